package wasmhost_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/preinit"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// BenchmarkInstances starts b.N rooms' instances of a module and keeps
// them until the end, for the time of one instantiation (NewService:
// instantiate, _initialize, the ABI check, the room id) and the memory an
// instance holds once started: rss-B/instance (VmRSS, which counts a page
// of the shared image again in each instance that read it) and
// pss-B/instance (which divides it among them). Each module runs with the
// host's mapped memory, the same with the kernel's fault-around left on
// for the image mapping (the path before limitFaultAround), and with
// Options.HeapMemory (wazero's own, the path before that), in the same run;
// the mapped cases also run without pre-faulting what a start writes (the
// path before it, memory_linux.go, prefaultStart) and with the pages a
// start only reads populated too. heap-B/instance is the live Go heap an
// instance holds; cpu-ns/instance (of which sys-ns) and faults/instance
// are the whole process's CPU time and minor page faults over the loop,
// from getrusage, the garbage collector's included:
//
//	go test -run XXX -bench Instances -benchtime 300x -count 3 ./wasmhost/
//
// go-counter is examples/counter as gobuild makes it, go-counter-preinit
// the same pre-initialised, as `stateroom build` writes it;
// rust-counter upstream's counter built with rustc (testdata/rustcounter);
// wat-counter the hand-written testdata/counter.wasm.
func BenchmarkInstances(b *testing.B) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	wat, err := os.ReadFile(filepath.Join("testdata", "counter.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	rust, err := os.ReadFile(filepath.Join("testdata", "rustcounter", "counter.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	modules := []struct {
		name string
		bin  func() []byte
	}{
		{"wat-counter", func() []byte { return wat }},
		{"rust-counter", func() []byte { return rust }},
		{"go-counter", func() []byte { return gobuildtest.Module(b, "../examples/counter", "") }},
		{"go-counter-preinit", func() []byte { return preinitModule(b, gobuildtest.Module(b, "../examples/counter", "")) }},
	}
	for _, mod := range modules {
		for _, c := range []struct {
			name              string
			heap, faultAround bool
			noPrefault, reads bool
		}{
			{name: "mapped"},
			{name: "mapped-noprefault", noPrefault: true},
			{name: "mapped-prefaultreads", reads: true},
			{name: "mapped-faultaround", faultAround: true},
			{name: "mapped-faultaround-noprefault", faultAround: true, noPrefault: true},
			{name: "heap", heap: true},
		} {
			b.Run(mod.name+"/"+c.name, func(b *testing.B) {
				defer wasmhost.KeepFaultAround(c.faultAround)()
				defer wasmhost.PrefaultMode(!c.noPrefault, c.reads)()
				m := gobuildtest.Factory(b, mod.bin(), wasmhost.Options{HeapMemory: c.heap, Logger: discard})
				services := make([]stateroom.Service, 0, b.N)
				defer func() {
					for _, s := range services {
						_ = s.(io.Closer).Close()
					}
				}()
				rss0, pss0 := benchMemory(b)
				heap0 := liveHeap()
				ru0 := rusage(b)
				b.ResetTimer()
				for range b.N {
					s, err := m.NewService("bench-room")
					if err != nil {
						b.Fatal(err)
					}
					services = append(services, s)
				}
				b.StopTimer()
				ru := rusage(b)
				b.ReportMetric(float64(ru.cpu-ru0.cpu)/float64(b.N), "cpu-ns/instance")
				b.ReportMetric(float64(ru.sys-ru0.sys)/float64(b.N), "sys-ns/instance")
				b.ReportMetric(float64(ru.faults-ru0.faults)/float64(b.N), "faults/instance")
				rss, pss := benchMemory(b)
				b.ReportMetric(float64(liveHeap()-heap0)/float64(b.N), "heap-B/instance")
				b.ReportMetric(float64(rss-rss0)/float64(b.N), "rss-B/instance")
				b.ReportMetric(float64(pss-pss0)/float64(b.N), "pss-B/instance")
			})
		}
	}
}

// preinitModule pre-initialises a Go guest as stateroom build does.
func preinitModule(b testing.TB, module []byte) []byte {
	out, _, err := preinit.Run(context.Background(), module, preinit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// processUsage is what getrusage says of the whole process: CPU (user and
// system, the garbage collector's and page faults' included) and minor
// page faults.
type processUsage struct{ cpu, sys, faults int64 }

func rusage(b *testing.B) processUsage {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return processUsage{
		cpu:    ru.Utime.Nano() + ru.Stime.Nano(),
		sys:    ru.Stime.Nano(),
		faults: ru.Minflt,
	}
}

// liveHeap returns the bytes of live Go heap objects; benchMemory has just
// collected.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// benchMemory returns the process's VmRSS and Pss once the Go heap has
// handed back what is free.
func benchMemory(b *testing.B) (rss, pss int64) {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	return procField(b, "/proc/self/status", "VmRSS:"), procField(b, "/proc/self/smaps_rollup", "Pss:")
}
