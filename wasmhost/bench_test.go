package wasmhost

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// budgets are the two sandbox settings benchmarks compare.
var budgets = []struct {
	name   string
	budget time.Duration
}{
	{"budget", 0}, // the default, 2 s
	{"nobudget", NoBudget},
}

// BenchmarkEvent measures one event round trip: write into the retained
// event buffer, recv (one guest call; see eventBuffer), and one
// stateroom_send back (the relay's envelope of a Timer event).
func BenchmarkEvent(b *testing.B) {
	for _, c := range budgets {
		b.Run(c.name, func(b *testing.B) {
			opts := testOptions()
			opts.EventBudget = c.budget
			s := newService(b, loadGuest(b, "relay", opts))
			room := &countingRoom{}
			b.ReportAllocs()
			for b.Loop() {
				s.Timer(room, stateroom.TimerEvent{})
			}
			if room.sends != b.N {
				b.Fatalf("%d sends for %d events", room.sends, b.N)
			}
		})
	}
}

// BenchmarkEventSize measures Message events of growing size under the
// default budget, up to and just past maxRetainedEventBuffer: at the cap the
// retained buffer serves the event (one guest call), one byte over it the
// event gets its own malloc and free (three calls). The relay guest copies
// each event into its envelope and sends it back.
func BenchmarkEventSize(b *testing.B) {
	for _, size := range []int{64, 1 << 10, maxRetainedEventBuffer, maxRetainedEventBuffer + 1, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := newService(b, loadGuest(b, "relay", testOptions()))
			room := &countingRoom{}
			ev := stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(strings.Repeat("m", size-20))}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				s.Message(room, ev)
			}
			if room.sends != b.N {
				b.Fatalf("%d sends for %d events", room.sends, b.N)
			}
		})
	}
}

// BenchmarkCallFloor is wazero's floor for comparison: one call of an
// exported function that returns a constant, with the same context
// handling as an event.
func BenchmarkCallFloor(b *testing.B) {
	for _, c := range budgets {
		b.Run(c.name, func(b *testing.B) {
			opts := testOptions()
			opts.EventBudget = c.budget
			s := newService(b, loadGuest(b, "versionfunc", opts))
			fn := s.mod.ExportedFunction(versionFunc)
			b.ReportAllocs()
			for b.Loop() {
				ctx := s.beginCall()
				if err := fn.CallWithStack(ctx, s.stack[:]); err != nil {
					b.Fatal(err)
				}
				s.endCall()
			}
		})
	}
}

// BenchmarkSpin measures what the budget costs CPU-bound guest code: one
// event runs a loop of a million iterations, with wazero's
// close-on-context-done checks compiled in (budget) or not (nobudget).
func BenchmarkSpin(b *testing.B) {
	for _, c := range budgets {
		b.Run(c.name, func(b *testing.B) {
			opts := testOptions()
			opts.EventBudget = c.budget
			s := newService(b, loadGuest(b, "spin", opts))
			room := &countingRoom{}
			for b.Loop() {
				s.Timer(room, stateroom.TimerEvent{})
			}
		})
	}
}

// BenchmarkInstantiate measures starting and closing one room's instance,
// and reports the Go heap each live instance holds (its linear memory
// included: the relay starts with two 64 KiB pages).
func BenchmarkInstantiate(b *testing.B) {
	for _, guest := range []string{"relay", "reactor"} {
		b.Run(guest, func(b *testing.B) {
			m := loadGuest(b, guest, testOptions())
			b.ReportAllocs()
			for b.Loop() {
				svc, err := m.NewService("r")
				if err != nil {
					b.Fatal(err)
				}
				_ = svc.(*service).Close()
			}
			b.StopTimer()
			const live = 200
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			svcs := make([]stateroom.Service, live)
			for i := range svcs {
				var err error
				if svcs[i], err = m.NewService("r"); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/live, "heapB/instance")
			for _, s := range svcs {
				_ = s.(*service).Close()
			}
		})
	}
}

// BenchmarkLoad measures Load: compiling cold, and from a filled cache
// directory.
func BenchmarkLoad(b *testing.B) {
	path := filepath.Join("testdata", "relay.wasm")
	load := func(b *testing.B, opts Options) {
		m, err := Load(context.Background(), path, opts)
		if err != nil {
			b.Fatal(err)
		}
		_ = m.Close(context.Background())
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			load(b, testOptions())
		}
	})
	b.Run("cached", func(b *testing.B) {
		opts := testOptions()
		opts.DisableCache, opts.CacheDir = false, b.TempDir()
		load(b, opts) // fill the cache
		for b.Loop() {
			load(b, opts)
		}
	})
}

// countingRoom counts sends without keeping them. The benchmarks measure
// the host and the guest, not a recorder: stateroomtest.Room copies every
// payload and appends it to a slice that grows with b.N, which would add
// its own allocations (ReportAllocs) and memory to every event.
type countingRoom struct{ sends int }

func (*countingRoom) ID() string                                                  { return "bench" }
func (r *countingRoom) Send(stateroom.Recipient, stateroom.Payload)               { r.sends++ }
func (*countingRoom) SetTimer(time.Duration)                                      {}
func (*countingRoom) Close(stateroom.ClientID, stateroom.CloseCode, string) error { return nil }
