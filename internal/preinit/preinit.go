// Package preinit pre-initialises a Go guest module at build time, as
// Wizer does for Rust and C: it runs the module's start-up (the Go
// runtime's init, every package's init functions, guest.Register) once in
// wazero and writes the memory and globals it leaves into the module
// (internal/wasmpatch's Freeze), so that instantiating the module skips
// start-up. The output is an ordinary module that runs on any host.
//
// # What stays per instance
//
// Start-up seeds the runtime's random generators from WASI random_get.
// Frozen, every instance would draw the same numbers (math/rand/v2, the
// top-level functions of math/rand, select's choices, the seeds of maps
// made later). Run finds those generators and lists them in package
// guest's reseed table; the guest refills them from the host's random_get
// at its first call. To find them, start-up runs twice with different
// entropy: a ChaCha8 generator state (recognised by its structure and
// checked by recomputing its block from its key) whose bytes differ
// between the runs was seeded from entropy. The runtime's per-thread state
// is followed by its cheap generator's word, which is refilled too.
//
// Other state derived from the entropy stays as the first run left it:
// the runtime's hash key and the seeds of maps made during start-up (their
// entries are laid out by those seeds, so refilling them would break the
// maps), and whatever a package drew from crypto/rand in an init function.
// Start-up runs with a deterministic clock that starts at zero, empty
// environment and arguments, and deterministic entropy, so the same module
// always pre-initialises to the same bytes (stateroom dev's "identical
// module" check and raw snapshots rely on identical modules).
package preinit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// Errors of [Run], wrapped with details.
var (
	// ErrStartup: the module's start-up trapped, panicked, exited or did
	// not finish in time. The error holds the end of its stderr, where
	// the Go runtime prints a panic and its stack.
	ErrStartup = errors.New("preinit: the module's start-up failed")
	// ErrNotRegistered: start-up finished without a call to
	// guest.Register.
	ErrNotRegistered = errors.New("preinit: no service was registered during start-up")
	// ErrNoTable: the module's memory has no reseed table of package
	// guest, so it was not built with this repository's guest SDK.
	ErrNoTable = errors.New("preinit: the module has no reseed table of the Stateroom guest SDK")
)

// DefaultTimeout bounds a start-up when Options.Timeout is zero. A Go
// guest's start-up takes milliseconds; a minute means a loop.
const DefaultTimeout = time.Minute

// Options tune [Run]. The zero value is ready to use.
type Options struct {
	// Timeout bounds each run of the start-up. Default: DefaultTimeout.
	Timeout time.Duration
}

// Result describes what [Run] wrote.
type Result struct {
	// MemoryBytes is the initialised memory's size, now the module's
	// minimum.
	MemoryBytes int
	// Segments and DataBytes describe the data segments written.
	Segments, DataBytes int
	// Globals is the number of mutable globals frozen.
	Globals int
	// Reseeded is the number of memory ranges the guest refills with
	// fresh entropy at its first call.
	Reseeded int
	// Startup is how long one start-up took at build time, in wazero's
	// interpreter.
	Startup time.Duration
}

// The reseed table of package guest (guest/preinit.go): head, registered
// (u32), count (u32), maxRanges pairs of u32 (address, size), tail.
var (
	tableHead = []byte{'\xff', 's', 't', 'a', 't', 'e', 'r', 'o', 'o', 'm', '-', 'p', 'r', 'e', '\xff', '\x01'}
	tableTail = []byte{'\xfe', 'e', 'n', 'd'}
)

const (
	maxRanges       = 32
	registeredAt    = 16
	countAt         = 20
	rangesAt        = 24
	tableTailOffset = rangesAt + maxRanges*8
)

// Run pre-initialises module, a module built by internal/gobuild (patched
// by internal/wasmpatch, so its start function is the Go runtime's
// _initialize), and returns the new module. module is not modified.
func Run(ctx context.Context, module []byte, opts Options) ([]byte, Result, error) {
	var res Result
	probe, globals, err := wasmpatch.ExportState(module)
	if err != nil {
		return nil, res, fmt.Errorf("preinit: %w", err)
	}
	// wazero's interpreter: compiling a Go module to machine code takes
	// seconds (3 s for the counter example here, 75 s under the race
	// detector), the interpreter 0.6 s, and start-up runs about as fast
	// in both (26 ms and 19 ms: it is mostly memory.fill, which both run
	// natively).
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCloseOnContextDone(true))
	defer rt.Close(context.WithoutCancel(ctx))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, res, fmt.Errorf("preinit: %w", err)
	}
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(context.Context, uint32, uint32) {
			panic(errors.New("the module called stateroom_send during start-up; a service may send only while it handles an event"))
		}).Export("stateroom_send").Instantiate(ctx); err != nil {
		return nil, res, fmt.Errorf("preinit: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, probe)
	if err != nil {
		return nil, res, fmt.Errorf("preinit: the module does not compile: %w", err)
	}

	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Two start-ups that differ only in the entropy they are given: what
	// differs between them was seeded from it.
	var runs [2]instanceState
	for i := range runs {
		start := time.Now()
		if runs[i], err = startup(ctx, rt, compiled, globals, uint64(i), timeout); err != nil {
			return nil, res, err
		}
		if i == 0 {
			res.Startup = time.Since(start)
		}
	}
	mem := runs[0].memory

	table, err := findTable(mem)
	if err != nil {
		return nil, res, err
	}
	if binary.LittleEndian.Uint32(mem[table+registeredAt:]) == 0 {
		return nil, res, fmt.Errorf("%w: call guest.Register from an init function of package main, not from main: "+
			"a WebAssembly reactor runs init functions but never main, so every room of this module would fail "+
			"(write `func init() { guest.Register(stateroom.New(NewMyService)) }` and leave `func main() {}` empty)", ErrNotRegistered)
	}
	ranges := seededRanges(mem, runs[1].memory)
	if len(ranges) > maxRanges {
		return nil, res, fmt.Errorf("preinit: start-up left %d random generators seeded from entropy, more than the %d the guest can reseed; seed generators in the service's factory instead of in init functions", len(ranges), maxRanges)
	}
	binary.LittleEndian.PutUint32(mem[table+countAt:], uint32(len(ranges)))
	for i, r := range ranges {
		binary.LittleEndian.PutUint32(mem[table+rangesAt+8*i:], r[0])
		binary.LittleEndian.PutUint32(mem[table+rangesAt+8*i+4:], r[1])
	}
	res.Reseeded = len(ranges)

	out, fr, err := wasmpatch.Freeze(module, wasmpatch.Snapshot{Memory: mem, Globals: runs[0].globals})
	if err != nil {
		return nil, res, fmt.Errorf("preinit: %w", err)
	}
	res.MemoryBytes, res.Segments, res.DataBytes, res.Globals = len(mem), fr.Segments, fr.DataBytes, fr.Globals
	return out, res, nil
}

// instanceState is what a start-up left: the memory and the values of the
// mutable globals.
type instanceState struct {
	memory  []byte
	globals []uint64
}

// startup instantiates compiled (which runs nothing) with the entropy of
// stream seed and a deterministic clock, calls its start function under
// timeout, and returns the state that leaves.
func startup(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule, globals []wasmpatch.MutableGlobal, seed uint64, timeout time.Duration) (instanceState, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr, stdout bytes.Buffer
	clk := &clock{}
	var entropy [32]byte
	binary.LittleEndian.PutUint64(entropy[:], seed)
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // no _start; start-up is called below
		WithRandSource(rand.NewChaCha8(entropy)).
		WithNanotime(clk.nanotime, 1).
		WithWalltime(clk.walltime, 1).
		WithNanosleep(clk.sleep).
		WithStdout(&stdout).
		WithStderr(&stderr)
	mod, err := rt.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		return instanceState{}, startupError(ctx, err, &stderr, timeout)
	}
	defer mod.Close(context.WithoutCancel(ctx))
	// The start function, called rather than run by instantiation, so
	// that the deadline stops it (wazero checks a call's context).
	if _, err := mod.ExportedFunction(wasmpatch.StartExport).Call(ctx); err != nil {
		return instanceState{}, startupError(ctx, err, &stderr, timeout)
	}
	mem := mod.Memory()
	if mem == nil {
		return instanceState{}, fmt.Errorf("preinit: the module has no memory")
	}
	b, _ := mem.Read(0, mem.Size())
	st := instanceState{memory: bytes.Clone(b)}
	for _, g := range globals {
		eg := mod.ExportedGlobal(g.Export)
		if eg == nil {
			return instanceState{}, fmt.Errorf("preinit: mutable global %d was not exported", g.Index)
		}
		st.globals = append(st.globals, eg.Get())
	}
	return st, nil
}

// startupError describes a failed start-up with the end of its stderr,
// where the Go runtime prints a panic ("panic: ...", "fatal error: ...")
// and the goroutine's stack.
func startupError(ctx context.Context, err error, stderr *bytes.Buffer, timeout time.Duration) error {
	what := err.Error()
	var exit *sys.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		what = fmt.Sprintf("it did not finish within %v (an init function that never returns?)", timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("preinit: %w", ctx.Err())
	case errors.As(err, &exit):
		what = fmt.Sprintf("it exited with code %d", exit.ExitCode())
	}
	out := strings.TrimRight(stderr.String(), "\n")
	if out == "" {
		return fmt.Errorf("%w: %s", ErrStartup, what)
	}
	// The panic line first, so the message names it even when the stack
	// is long; then the output's end.
	lines := strings.Split(out, "\n")
	head := ""
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			head = l
			break
		}
	}
	if len(lines) > 30 {
		lines = append([]string{"..."}, lines[len(lines)-30:]...)
	}
	if head != "" {
		return fmt.Errorf("%w: %s: %s\nits stderr:\n%s", ErrStartup, what, head, strings.Join(lines, "\n"))
	}
	return fmt.Errorf("%w: %s\nits stderr:\n%s", ErrStartup, what, strings.Join(lines, "\n"))
}

// clock is the deterministic clock of a start-up. Its monotonic reading
// starts at zero and advances one nanosecond per reading (and by what a
// sleep asks), so readings the runtime keeps (the time package's start,
// the GC's last run) are tiny: a host's monotonic clock at run time,
// never negative, is never behind them. The wall clock reads the Unix
// epoch plus the same amount.
type clock struct{ now int64 }

func (c *clock) nanotime() int64 {
	c.now++
	return c.now
}

func (c *clock) walltime() (sec int64, nsec int32) {
	n := c.nanotime()
	return n / 1e9, int32(n % 1e9)
}

func (c *clock) sleep(ns int64) {
	if ns > 0 {
		c.now += ns
	}
}

// findTable returns the offset of package guest's reseed table in mem.
func findTable(mem []byte) (int, error) {
	at := bytes.Index(mem, tableHead)
	if at < 0 {
		return 0, fmt.Errorf("%w: build it with the guest package of this version", ErrNoTable)
	}
	if bytes.Contains(mem[at+1:], tableHead) {
		return 0, fmt.Errorf("%w: its marker appears more than once", ErrNoTable)
	}
	if at+tableTailOffset+len(tableTail) > len(mem) || !bytes.Equal(mem[at+tableTailOffset:at+tableTailOffset+len(tableTail)], tableTail) {
		return 0, fmt.Errorf("%w: the table's layout differs from this build tool's; rebuild with matching versions", ErrNoTable)
	}
	return at, nil
}
