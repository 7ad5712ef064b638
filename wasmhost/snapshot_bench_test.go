package wasmhost

import (
	"testing"

	"github.com/stateroom-go/stateroom"
)

// rawCases are the instances the raw-memory benchmarks snapshot: the
// counter guest with its memory grown to pages pages, of which dirty
// (counted from the top) are filled with text-like bytes (eight letters
// mixed by a xorshift: 3 bits of entropy a byte, so they compress to some
// 40%), the rest left as instantiation made them (zeros). Page 0, the
// guest's own, is never filled.
var rawCases = []rawCase{
	{"1page", 1, 0},       // a fresh instance: the room id and event buffer
	{"16pages", 16, 15},   // 1 MiB, nearly all of it state
	{"256pages", 256, 16}, // 16 MiB, 1 MiB of it state
	{"1000pages", 1000, 64},
}

type rawCase struct {
	name         string
	pages, dirty uint32
}

// rawInstance returns a counter instance shaped as c says, after one
// increment.
func rawInstance(t testing.TB, m *Module, c rawCase) *service {
	s := newService(t, m)
	if grow := c.pages - s.pages(); grow > 0 {
		if _, ok := s.mem.Grow(grow); !ok {
			t.Fatalf("cannot grow to %d pages", c.pages)
		}
	}
	x := uint32(1)
	for i := max(1, c.pages-c.dirty); i < c.pages; i++ {
		p, _ := s.mem.Read(i*pageSize, pageSize)
		for j := range p {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			p[j] = "abcdefgh"[x%8]
		}
	}
	s.Message(newRoom(), text("i"))
	return s
}

// BenchmarkSnapshot measures Snapshot, the time the runtime holds a room
// to save it, and reports the snapshot's size: raw memory (the counter
// guest, which has no snapshot exports) and the guest's own bytes through
// stateroom_snapshot (snapguest: four bytes of state, so what is measured
// is the call and the header).
func BenchmarkSnapshot(b *testing.B) {
	opts := testOptions()
	opts.MemoryLimit = 1024 * pageSize
	counter := loadGuest(b, "counter", opts)
	for _, c := range rawCases {
		b.Run("raw/"+c.name, func(b *testing.B) {
			s := rawInstance(b, counter, c)
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
	b.Run("guest/4B", func(b *testing.B) {
		s := newService(b, loadGuest(b, "snapguest", opts))
		s.Message(newRoom(), text("i"))
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

// BenchmarkRestore measures Restore into a fresh instance (its
// instantiation is not timed): decode, check, grow the memory, inflate the
// stored pages and reset the rest to the base image, set the globals.
func BenchmarkRestore(b *testing.B) {
	opts := testOptions()
	opts.MemoryLimit = 1024 * pageSize
	counter := loadGuest(b, "counter", opts)
	restore := func(b *testing.B, m *Module, snap []byte) {
		b.ReportAllocs()
		b.SetBytes(int64(len(snap)))
		for b.Loop() {
			b.StopTimer()
			svc, err := m.NewService("bench")
			if err != nil {
				b.Fatal(err)
			}
			s := svc.(*service)
			b.StartTimer()
			if err := s.Restore(snap); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = s.Close()
			b.StartTimer()
		}
	}
	for _, c := range rawCases {
		b.Run("raw/"+c.name, func(b *testing.B) {
			restore(b, counter, snapshotOf(b, rawInstance(b, counter, c)))
		})
	}
	b.Run("guest/4B", func(b *testing.B) {
		m := loadGuest(b, "snapguest", opts)
		s := newService(b, m)
		s.Message(newRoom(), text("i"))
		restore(b, m, snapshotOf(b, s))
	})
}

// TestRawCasesRestore checks that what the benchmarks measure restores
// exactly: every page of the restored memory equals the original's.
func TestRawCasesRestore(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 1024 * pageSize
	counter := loadGuest(t, "counter", opts)
	for _, c := range rawCases[:3] {
		t.Run(c.name, func(t *testing.T) {
			src := rawInstance(t, counter, c)
			snap := snapshotOf(t, src)
			dst := newService(t, counter)
			if err := dst.Restore(snap); err != nil {
				t.Fatal(err)
			}
			if dst.pages() != src.pages() {
				t.Fatalf("%d pages restored, want %d", dst.pages(), src.pages())
			}
			for i := range src.pages() {
				p, _ := src.mem.Read(i*pageSize, pageSize)
				q, _ := dst.mem.Read(i*pageSize, pageSize)
				if string(p) != string(q) {
					t.Fatalf("page %d differs after the restore", i)
				}
			}
			room := newRoom()
			dst.Init(room, stateroom.InitEvent{Restored: true})
			dst.Message(room, text("i"))
			if got := lastCounter(t, room); got.Mem != 2 || got.Global != 2 || got.Pages != c.pages {
				t.Errorf("after the restore: %+v", got)
			}
		})
	}
}
