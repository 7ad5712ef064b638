package wasmhost_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// The cost of hibernating and waking a room of a WebAssembly service, as
// the room runtime pays it (internal/rooms hibernate.go): to hibernate,
// Snapshot and then Close the instance; to wake, a new instance from the
// module (instantiation included), Restore, and Init with Restored set.
// snapshot-bytes is what the runtime keeps in memory while the room
// sleeps; the store holds it in an envelope some 13 bytes longer.
//
// Two services, each after Init, a client and 100 increments:
//
//   - rust-counter: upstream's counter example built by rustc for
//     wasm32-wasi (testdata/rustcounter), which has no snapshot exports:
//     the host takes its raw memory. "cold" is an instance's first
//     snapshot, which compresses every page that differs from the base
//     image; "checkpointed" is one taken after an earlier snapshot of the
//     same instance (as when the room was checkpointed since its last
//     event): only pages changed since are compressed again.
//   - go-counter: examples/counter built by stateroom build's compiler
//     (GOOS=wasip1), whose guest SDK exports its Snapshotter: the
//     snapshot is the service's own few bytes.
//
//	go test -run '^$' -bench 'BenchmarkHibernate|BenchmarkWake' -benchtime 200x ./wasmhost/

// BenchmarkHibernate measures Snapshot plus Close of a live instance.
func BenchmarkHibernate(b *testing.B) {
	for _, c := range durableCases {
		for _, warm := range []bool{false, true} {
			name := c.name + "/cold"
			if warm {
				if !c.raw {
					continue // a guest's own snapshot keeps nothing between calls
				}
				name = c.name + "/checkpointed"
			}
			b.Run(name, func(b *testing.B) {
				m := c.load(b)
				var size int
				var snapTime, closeTime time.Duration
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					svc := counterRoom(b, m)
					if warm {
						if _, err := svc.(stateroom.Snapshotter).Snapshot(); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					start := time.Now()
					snap, err := svc.(stateroom.Snapshotter).Snapshot()
					if err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := svc.(io.Closer).Close(); err != nil {
						b.Fatal(err)
					}
					snapTime += mid.Sub(start)
					closeTime += time.Since(mid)
					size = len(snap)
				}
				// The two parts of ns/op: the snapshot, taken with the
				// room locked, and the instance's Close.
				b.ReportMetric(float64(snapTime.Nanoseconds())/float64(b.N), "snapshot-ns/op")
				b.ReportMetric(float64(closeTime.Nanoseconds())/float64(b.N), "close-ns/op")
				b.ReportMetric(float64(size), "snapshot-bytes")
			})
		}
	}
}

// BenchmarkWake measures a new instance, Restore and Init of a hibernated
// room's snapshot; the instance is closed outside the timing.
func BenchmarkWake(b *testing.B) {
	for _, c := range durableCases {
		b.Run(c.name, func(b *testing.B) {
			m := c.load(b)
			live := counterRoom(b, m)
			snap, err := live.(stateroom.Snapshotter).Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			_ = live.(io.Closer).Close()
			room := &nullRoom{id: "bench"}
			var newTime, restoreTime time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				svc, err := m.NewService("bench")
				if err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := svc.(stateroom.Snapshotter).Restore(snap); err != nil {
					b.Fatal(err)
				}
				svc.Init(room, stateroom.InitEvent{Restored: true})
				newTime += mid.Sub(start)
				restoreTime += time.Since(mid)
				b.StopTimer()
				_ = svc.(io.Closer).Close()
				b.StartTimer()
			}
			// The two parts of ns/op: the new instance, and Restore plus
			// Init.
			b.ReportMetric(float64(newTime.Nanoseconds())/float64(b.N), "instantiate-ns/op")
			b.ReportMetric(float64(restoreTime.Nanoseconds())/float64(b.N), "restore-ns/op")
			b.ReportMetric(float64(len(snap)), "snapshot-bytes")
		})
	}
}

// durableCase is a module the benchmarks above hibernate and wake.
type durableCase struct {
	name string
	raw  bool // the host snapshots its memory
	load func(b *testing.B) *wasmhost.Module
}

var durableCases = []durableCase{
	{"rust-counter", true, func(b *testing.B) *wasmhost.Module {
		wasm, err := os.ReadFile(filepath.Join("testdata", "rustcounter", "counter.wasm"))
		if err != nil {
			b.Fatal(err)
		}
		return compileModule(b, wasm)
	}},
	{"go-counter", false, func(b *testing.B) *wasmhost.Module {
		goCounterOnce.Do(func() {
			out := filepath.Join(b.TempDir(), "counter.wasm")
			if goCounterErr = gobuild.Build(context.Background(), gobuild.Options{Dir: filepath.Join("..", "examples", "counter"), Output: out}); goCounterErr == nil {
				goCounterWasm, goCounterErr = os.ReadFile(out)
			}
		})
		if goCounterErr != nil {
			b.Fatalf("building examples/counter: %v", goCounterErr)
		}
		return compileModule(b, goCounterWasm)
	}},
}

// The Go counter is built once per test binary, on first use: only these
// benchmarks need it, and a cold build takes tens of seconds.
var (
	goCounterOnce sync.Once
	goCounterWasm []byte
	goCounterErr  error
)

// compileModule compiles a module for a benchmark, closed when it ends.
func compileModule(b *testing.B, wasm []byte) *wasmhost.Module {
	b.Helper()
	m, err := wasmhost.Compile(context.Background(), wasm, wasmhost.Options{DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// counterRoom returns a live instance of a counter module after Init, one
// client and 100 increments.
func counterRoom(b *testing.B, m *wasmhost.Module) stateroom.Service {
	b.Helper()
	svc, err := m.NewService("bench")
	if err != nil {
		b.Fatal(err)
	}
	room := &nullRoom{id: "bench"}
	svc.Init(room, stateroom.InitEvent{})
	svc.Connect(room, stateroom.ConnectEvent{Client: 1})
	for range 100 {
		svc.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("increment")})
	}
	return svc
}

// nullRoom is a stateroom.Room that drops what the service sends: the
// benchmarks measure the host, not a recorder.
type nullRoom struct{ id string }

func (r *nullRoom) ID() string                                                  { return r.id }
func (r *nullRoom) Send(stateroom.Recipient, stateroom.Payload)                 {}
func (r *nullRoom) SetTimer(d time.Duration)                                    {}
func (r *nullRoom) Close(stateroom.ClientID, stateroom.CloseCode, string) error { return nil }

var _ stateroom.Room = (*nullRoom)(nil)
