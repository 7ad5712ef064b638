package preinit_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/preinit"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// BenchmarkRoomStart compares what a room of the counter example costs to
// start on package wasmhost (Module.NewService: instantiate, start-up,
// ABI check, room id) with the module as gobuild writes it ("plain") and
// pre-initialised as stateroom build writes it ("preinit"), in the same
// run. Besides ns/op it reports the module's size and the resident memory
// each of 100 live rooms adds (RSS, Linux only).
//
// Run: go test -run XXX -bench RoomStart -benchtime 200x -count 3 ./internal/preinit
func BenchmarkRoomStart(b *testing.B) {
	plain := gobuildtest.Module(b, "../../examples/counter", "")
	pre, _, err := preinit.Run(context.Background(), plain, preinit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name   string
		module []byte
	}{{"plain", plain}, {"preinit", pre}} {
		b.Run(v.name, func(b *testing.B) {
			m := gobuildtest.Factory(b, v.module, wasmhost.Options{})
			i := 0
			for b.Loop() {
				closeService(b, newRoom(b, m, i))
				i++
			}
			b.ReportMetric(float64(len(v.module)), "module-bytes")
			if kib, ok := residentPerRoom(b, m, 100); ok {
				b.ReportMetric(kib, "KiB-RSS/room")
			}
		})
	}
}

func newRoom(tb testing.TB, m *wasmhost.Module, i int) stateroom.Service {
	svc, err := m.NewService("room-" + strconv.Itoa(i))
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

func closeService(tb testing.TB, svc stateroom.Service) {
	if c, ok := svc.(io.Closer); ok {
		if err := c.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}

// residentPerRoom starts n rooms, keeps them live, and returns the growth
// of the process's resident memory divided by n, in KiB.
func residentPerRoom(tb testing.TB, m *wasmhost.Module, n int) (float64, bool) {
	runtime.GC()
	debug.FreeOSMemory()
	before, ok := rss()
	if !ok {
		return 0, false
	}
	rooms := make([]stateroom.Service, n)
	for i := range rooms {
		rooms[i] = newRoom(tb, m, i)
	}
	runtime.GC()
	after, _ := rss()
	for _, r := range rooms {
		closeService(tb, r)
	}
	return float64(after-before) / float64(n) / 1024, true
}

// rss reads the process's resident set size from /proc/self/statm.
func rss() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
