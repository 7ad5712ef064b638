//go:build unix

package server

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/store"
)

// durableFanout is fanout with state to save: the number of messages it
// relayed and the last one, as a chat keeps its recent history.
type durableFanout struct {
	stateroom.BaseService
	n    int
	last []byte
}

func (f *durableFanout) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	f.n++
	f.last = append(f.last[:0], ev.Payload.Data...)
	r.Send(stateroom.Everyone, ev.Payload)
}

func (f *durableFanout) Snapshot() ([]byte, error) {
	return append([]byte{byte(f.n), byte(f.n >> 8), byte(f.n >> 16), byte(f.n >> 24)}, f.last...), nil
}

func (f *durableFanout) Restore(b []byte) error { return nil }

// BenchmarkCheckpointFanout is BenchmarkBroadcast's fan-out (one room, 50
// clients, a 64-byte message broadcast to all) with a durable service, run
// without a store and with a bbolt file at the default checkpoint interval
// (1 s): what saving costs a busy room. cpu-ns/frame is the CPU time of
// the whole process (server, driver and the 50 readers) per delivered
// frame, from getrusage; the server's share of it is the same in both.
//
//	go test -run '^$' -bench BenchmarkCheckpointFanout -benchtime 400000x -count 5 ./server/
func BenchmarkCheckpointFanout(b *testing.B) {
	for _, withStore := range []bool{false, true} {
		name := "store=none"
		if withStore {
			name = "store=bolt"
		}
		b.Run(name, func(b *testing.B) {
			opts := Options{Logger: quietLogger, MessageRate: 1e12, MessageBurst: 1 << 30}
			if withStore {
				st, err := store.Open(filepath.Join(b.TempDir(), "rooms.db"), store.BoltOptions{})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				opts.Store = st // CheckpointInterval: the default, 1 s
			}
			s, err := New(stateroom.New(func(string) *durableFanout { return &durableFanout{} }), opts)
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(s)
			defer ts.Close()
			defer s.Shutdown(context.Background())
			before := processCPU(b)
			runBroadcast(b, wsURL(ts, "/ws/bench"))
			cpu := processCPU(b) - before
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchClients), "cpu-ns/frame")
			// Checkpoints written during the run (and at Shutdown's start:
			// none yet), to show the interval was at work.
			b.ReportMetric(testutil.ToFloat64(s.metrics.snapshotsSaved), "checkpoints")
		})
	}
}

// processCPU returns the CPU time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
