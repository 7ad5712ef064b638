package wasmhost

import (
	"github.com/prometheus/client_golang/prometheus"

	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Defaults of [Options].
const (
	// DefaultEventBudget is the budget of one call into a guest when
	// Options.EventBudget is zero.
	DefaultEventBudget = 2 * time.Second
	// NoBudget as Options.EventBudget runs the guest without interruption:
	// for trusted modules only, as a guest that loops forever then blocks
	// its room forever. It saves the cost of the budget checks (see
	// BenchmarkEvent and BenchmarkSpin).
	NoBudget time.Duration = -1
	// DefaultMemoryLimit is the cap on one instance's linear memory when
	// Options.MemoryLimit is zero.
	DefaultMemoryLimit = 64 << 20
	// MaxMemoryLimit is the largest linear memory WebAssembly (32-bit)
	// can address.
	MaxMemoryLimit = 4 << 30
)

// pageSize is the size of a WebAssembly memory page.
const pageSize = 64 << 10

// Options configures a [Module]. The zero value is usable: every field
// states its default.
type Options struct {
	// EventBudget bounds the time of one call into the guest (delivering
	// one event, or instantiating a room). A guest that runs past it is
	// stopped and its room faults. Zero means DefaultEventBudget (2 s);
	// NoBudget means no limit.
	EventBudget time.Duration

	// MemoryLimit caps the linear memory of each instance, in bytes,
	// rounded up to whole 64 KiB pages. A guest's memory.grow past it
	// fails (the guest usually traps and its room faults). Zero means
	// DefaultMemoryLimit (64 MiB); at most MaxMemoryLimit (4 GiB).
	MemoryLimit int64

	// HeapMemory keeps every instance's linear memory on the Go heap,
	// wazero's default, instead of the mapped memory the host gives it on
	// Linux: a reservation of MemoryLimit of address space per instance
	// that grows without copying and returns to the operating system when
	// the room ends, with the module's initial memory shared copy-on-write
	// by all its instances (see the package documentation, "Memory"). Set
	// it where the reservations fail: a strict overcommit policy
	// (vm.overcommit_memory=2 counts each reservation in full), a low
	// address-space limit (ulimit -v) or vm.max_map_count (each instance
	// takes two mappings). Default false. Other platforms always use the
	// heap.
	HeapMemory bool

	// CacheDir holds compiled code between runs, so a restart skips
	// compilation. Empty means os.UserCacheDir()/stateroom/wazero (no
	// cache when the user has no cache directory).
	CacheDir string

	// DisableCache turns the compilation cache off: every Load compiles.
	// Default false.
	DisableCache bool

	// Metrics, when set, receives the module's Prometheus collectors:
	// stateroom_wasm_instantiate_seconds, stateroom_wasm_event_seconds{event}
	// and stateroom_wasm_faults_total{reason}. Modules given the same
	// registry share them. Nil means no metrics (and no clock reads per
	// event).
	Metrics prometheus.Registerer

	// Logger receives what guests write to stdout and stderr, one record
	// per line with the room id, and the faults of instances. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// settings are Options with defaults filled and validated.
type settings struct {
	budget      time.Duration // 0: none
	memoryPages uint32
	heapMemory  bool   // wazero's default memory (Options.HeapMemory, or no mapping here)
	cacheDir    string // "": no cache
	logger      *slog.Logger
}

// settings fills the defaults of o and validates it, without changing o.
func (o Options) settings() (settings, error) {
	s := settings{budget: o.EventBudget, logger: o.Logger, heapMemory: o.HeapMemory || !canMapMemory}
	switch {
	case o.EventBudget == 0:
		s.budget = DefaultEventBudget
	case o.EventBudget == NoBudget:
		s.budget = 0
	case o.EventBudget < 0:
		return s, fmt.Errorf("%w: EventBudget is %v; use a positive duration, 0 for the default (%v), or NoBudget for none", ErrOptions, o.EventBudget, DefaultEventBudget)
	}

	limit := o.MemoryLimit
	if limit == 0 {
		limit = DefaultMemoryLimit
	}
	if limit < 0 || limit > MaxMemoryLimit {
		return s, fmt.Errorf("%w: MemoryLimit is %d bytes; use 0 for the default (%d MiB) or a size between 1 and %d (4 GiB)", ErrOptions, o.MemoryLimit, DefaultMemoryLimit>>20, int64(MaxMemoryLimit))
	}
	s.memoryPages = uint32((limit + pageSize - 1) / pageSize)

	if !o.DisableCache {
		s.cacheDir = o.CacheDir
		if s.cacheDir == "" {
			if dir, err := os.UserCacheDir(); err == nil {
				s.cacheDir = filepath.Join(dir, "stateroom", "wazero")
			}
		}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s, nil
}
