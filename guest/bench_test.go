//go:build !wasip1

package guest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// nullRoom is a Room that counts what the service sends and keeps
// nothing. The benchmarks measure the guest and the host, not a recorder:
// stateroomtest.Room copies every payload and appends it to a slice that
// grows with b.N, which would add its own allocations and memory to each
// event.
type nullRoom struct{ sends int }

func (*nullRoom) ID() string                                                  { return "bench" }
func (r *nullRoom) Send(stateroom.Recipient, stateroom.Payload)               { r.sends++ }
func (*nullRoom) SetTimer(time.Duration)                                      {}
func (*nullRoom) Close(stateroom.ClientID, stateroom.CloseCode, string) error { return nil }

// hostModules returns the Go probe guest and wasmhost's hand-written relay
// guest, for benchmarks through the real host side by side.
func hostModules(b *testing.B) map[string][]byte {
	probeModule(b)
	relay, err := os.ReadFile(filepath.Join("..", "wasmhost", "testdata", "relay.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	return map[string][]byte{"go": probeBytes, "handwritten": relay}
}

// compileHost compiles wasm with hostOpts; the module is closed with b.
func compileHost(b *testing.B, wasm []byte) *wasmhost.Module {
	b.Helper()
	m, err := wasmhost.Compile(context.Background(), wasm, hostOpts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// BenchmarkHostInstantiate measures starting one room's instance through
// wasmhost (instantiate, initialize, version check) and closing it.
func BenchmarkHostInstantiate(b *testing.B) {
	for name, wasm := range hostModules(b) {
		b.Run(name, func(b *testing.B) {
			m := compileHost(b, wasm)
			b.ResetTimer()
			for range b.N {
				svc, err := m.NewService("bench")
				if err != nil {
					b.Fatal(err)
				}
				svc.(interface{ Close() error }).Close()
			}
		})
	}
}

// BenchmarkHostEvent measures one Timer event through wasmhost; both guests
// answer it with one broadcast.
func BenchmarkHostEvent(b *testing.B) {
	for name, wasm := range hostModules(b) {
		b.Run(name, func(b *testing.B) {
			m := compileHost(b, wasm)
			svc, err := m.NewService("bench")
			if err != nil {
				b.Fatal(err)
			}
			defer svc.(interface{ Close() error }).Close()
			room := &nullRoom{}
			svc.Init(room, stateroom.InitEvent{})
			room.sends = 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				svc.Timer(room, stateroom.TimerEvent{})
			}
			if room.sends != b.N {
				b.Fatalf("%d sends for %d events", room.sends, b.N)
			}
		})
	}
}

// BenchmarkHostCompile measures wasmhost compiling the Go guest without its
// cache (what a server pays once per module and process on a cold cache).
func BenchmarkHostCompile(b *testing.B) {
	probeModule(b)
	for range b.N {
		m, err := wasmhost.Compile(context.Background(), probeBytes, wasmhost.Options{DisableCache: true})
		if err != nil {
			b.Fatal(err)
		}
		m.Close(context.Background())
	}
}

// BenchmarkModuleMemory reports the linear memory of one Go guest instance
// after Init and after 10,000 small events.
func BenchmarkModuleMemory(b *testing.B) {
	var initial, steady float64
	for range b.N {
		inst := instantiate(b, ptr("r"))
		inst.deliver(abiInit)
		initial += float64(inst.mod.Memory().Size())
		for range 10_000 {
			inst.deliver(abiEcho)
		}
		steady += float64(inst.mod.Memory().Size())
		inst.mod.Close(context.Background())
	}
	b.ReportMetric(initial/float64(b.N)/(1<<20), "MiB-after-init")
	b.ReportMetric(steady/float64(b.N)/(1<<20), "MiB-after-10k-events")
}

// hostOpts are the wasmhost options of the benchmarks; BENCH_NO_BUDGET=1
// measures trusted modules (no per-event budget).
var hostOpts = func() wasmhost.Options {
	if os.Getenv("BENCH_NO_BUDGET") != "" {
		return wasmhost.Options{EventBudget: wasmhost.NoBudget}
	}
	return wasmhost.Options{}
}()

// snapshotCases are the Go guests BenchmarkHostSnapshot and
// BenchmarkHostRestore measure: the snapper service through the SDK's
// snapshot exports (its counter alone, and with 1 MiB of text-like state),
// and the probe, which is not a stateroom.Snapshotter, through the host's
// raw-memory path (after Init and 1,000 echoes, and holding 1 MiB more).
func snapshotCases(b *testing.B) []struct {
	name     string
	wasm     []byte
	commands []string
} {
	probeModule(b)
	snapper := snapperModule(b)
	echoes := make([]string, 1000)
	for i := range echoes {
		echoes[i] = "echo hello"
	}
	return []struct {
		name     string
		wasm     []byte
		commands []string
	}{
		{"exports/counter", snapper, []string{"inc"}},
		{"exports/1MiB", snapper, []string{"inc", "blob 1048576"}},
		{"raw/echoes", probeBytes, echoes},
		{"raw/1MiB", probeBytes, append(echoes, "keep 1048576")},
	}
}

// prepared starts an instance of wasm and runs Init and commands.
func prepared(b *testing.B, m *wasmhost.Module, commands []string) snapshotter {
	s := startHost(b, m)
	room := &nullRoom{}
	s.Init(room, stateroom.InitEvent{})
	for _, c := range commands {
		s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(c)})
	}
	return s
}

// BenchmarkHostSnapshot measures wasmhost's Snapshot of a Go guest (the
// time the runtime holds the room to save it) and reports its size.
func BenchmarkHostSnapshot(b *testing.B) {
	for _, c := range snapshotCases(b) {
		b.Run(c.name, func(b *testing.B) {
			s := prepared(b, loadHost(b, c.wasm, nil), c.commands)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				snap, err := s.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				size = len(snap)
			}
			b.ReportMetric(float64(size), "snapshot-bytes")
		})
	}
}

// BenchmarkHostRestore measures wasmhost's Restore of a Go guest's
// snapshot into a fresh instance (whose instantiation is not timed).
func BenchmarkHostRestore(b *testing.B) {
	for _, c := range snapshotCases(b) {
		b.Run(c.name, func(b *testing.B) {
			m := loadHost(b, c.wasm, nil)
			snap, err := prepared(b, m, c.commands).Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(snap)))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				svc, err := m.NewService("bench")
				if err != nil {
					b.Fatal(err)
				}
				s := svc.(snapshotter)
				b.StartTimer()
				if err := s.Restore(snap); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
		})
	}
}
