package store_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom/store"
)

// BenchmarkSave1000Rooms saves 1,000 rooms at once (one goroutine per room,
// 1 KiB snapshots), as when every room checkpoints together: "batch" shares
// transactions (db.Batch, the default BatchDelay of 10 ms), "batch-1ms" with
// a BatchDelay of 1 ms, "update" commits each Save alone (db.Update). One op
// is one round of 1,000 Saves.
func BenchmarkSave1000Rooms(b *testing.B) {
	for _, mode := range []string{"batch", "batch-1ms", "update"} {
		b.Run(mode, func(b *testing.B) {
			benchSaves(b, mode, 1000)
		})
	}
}

// BenchmarkSaveOneRoom saves one room after another: the latency of a lone
// Save, which with db.Batch includes waiting BatchDelay for company.
func BenchmarkSaveOneRoom(b *testing.B) {
	for _, mode := range []string{"batch", "batch-1ms", "update"} {
		b.Run(mode, func(b *testing.B) {
			benchSaves(b, mode, 1)
		})
	}
}

func benchSaves(b *testing.B, mode string, rooms int) {
	var opts store.BoltOptions
	if mode == "batch-1ms" {
		opts.BatchDelay = time.Millisecond
	}
	s, err := store.Open(filepath.Join(b.TempDir(), "rooms.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if mode == "update" {
		store.SetUnbatched(s)
	}
	names := make([]string, rooms)
	revs := make([]uint64, rooms)
	for r := range names {
		names[r] = fmt.Sprintf("room-%04d", r)
	}
	data := make([]byte, 1024)
	for b.Loop() {
		if rooms == 1 {
			rev, err := s.Save(ctx, names[0], data, revs[0])
			if err != nil {
				b.Fatal(err)
			}
			revs[0] = rev
			continue
		}
		var wg sync.WaitGroup
		for r := range rooms {
			wg.Go(func() {
				rev, err := s.Save(ctx, names[r], data, revs[r])
				if err != nil {
					b.Error(err)
					return
				}
				revs[r] = rev
			})
		}
		wg.Wait()
	}
	saves := float64(b.N * rooms)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/saves, "ns/save")
	b.ReportMetric(saves/b.Elapsed().Seconds(), "saves/s")
}
