package wasmhost

import (
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// Raw snapshots and restores skip the pages an instance never wrote
// (dirty_linux.go, snapshot_pristine.go). These tests write pages on both
// sides, in the places a wrong answer about a page would lose or leave
// behind: each fails if a written page is taken for one the instance
// never wrote. They run on every platform; elsewhere than Linux they check
// the comparisons that stand in for the kernel's answer.

// TestRawSnapshotStoresWrittenPages checks which pages a raw snapshot
// stores: a page grown and never written is not stored, one written is,
// and one written and then set back to zeros is not (it equals the base
// image again), for a module whose image is copied (counter) and one whose
// image is mapped (bigdata).
func TestRawSnapshotStoresWrittenPages(t *testing.T) {
	for _, guest := range []string{"counter", "bigdata"} {
		t.Run(guest, func(t *testing.T) {
			_, s, first := grownAfterEvent(t, guest, 4)
			// first: never written; first+1: one byte in its 4th KiB;
			// first+2: written, then zeros again; first+3: its last byte.
			s.mem.WriteByte((first+1)*pageSize+3*1024+5, 7)
			s.mem.WriteByte((first+2)*pageSize+100, 9)
			s.mem.WriteByte((first+2)*pageSize+100, 0)
			s.mem.WriteByte((first+4)*pageSize-1, 1)
			snap, err := decodeSnapshot(snapshotOf(t, s))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []uint32{first + 1, first + 3} {
				if !slices.Contains(snap.raw.stored, want) {
					t.Errorf("page %d was written, and the snapshot stores only pages %v", want, snap.raw.stored)
				}
			}
			for _, not := range []uint32{first, first + 2} {
				if slices.Contains(snap.raw.stored, not) {
					t.Errorf("page %d holds zeros as grown, and the snapshot stores it (pages %v)", not, snap.raw.stored)
				}
			}
		})
	}
}

// grownAfterEvent loads guest, starts an instance, runs Init and one
// increment, and grows its memory by n pages, returning the module, the
// instance and the first grown page.
func grownAfterEvent(t *testing.T, guest string, n uint32) (*Module, *service, uint32) {
	t.Helper()
	m := loadGuest(t, guest, testOptions())
	s := newService(t, m)
	room := newRoom()
	s.Init(room, stateroom.InitEvent{})
	s.Message(room, text("i"))
	first := s.pages()
	if _, ok := s.mem.Grow(n); !ok {
		t.Fatalf("cannot grow the memory by %d pages", n)
	}
	return m, s, first
}

// TestRawRestoreOverWrittenPages restores a snapshot into instances that
// wrote, before the restore, where the snapshot says otherwise: a page
// the snapshot does not store (it must become the base image's again) and
// a 4 KiB part of a stored page that the snapshot has as zeros (it must
// become zeros). Each restored memory must equal the snapshotted one
// page for page; the second restore of each module finds what the first
// learnt about its pages (pristineMemo) already known.
func TestRawRestoreOverWrittenPages(t *testing.T) {
	for _, guest := range []string{"counter", "bigdata"} {
		t.Run(guest, func(t *testing.T) {
			m, src, first := grownAfterEvent(t, guest, 3)
			src.mem.WriteByte((first+1)*pageSize+10, 42) // stored; the rest of it zeros
			snap := snapshotOf(t, src)

			for round := range 2 {
				dst := newService(t, m)
				if _, ok := dst.mem.Grow(3); !ok {
					t.Fatal("cannot grow the memory by 3 pages")
				}
				// Not stored: the base image's (zeros) after the restore.
				dst.mem.WriteByte(first*pageSize+5000, 0xee)
				dst.mem.WriteByte((first+2)*pageSize+70000%pageSize, 0xee)
				// Stored, with zeros there: zeros after the restore.
				dst.mem.WriteByte((first+1)*pageSize+9*4096+1, 0xee)
				// Page 0 holds data and the room id: scribble on it too.
				dst.mem.WriteByte(pageSize-1, 0xee)
				if err := dst.Restore(snap); err != nil {
					t.Fatal(err)
				}
				if dst.pages() != src.pages() {
					t.Fatalf("round %d: %d pages restored, want %d", round, dst.pages(), src.pages())
				}
				for i := range src.pages() {
					p, _ := src.mem.Read(i*pageSize, pageSize)
					q, _ := dst.mem.Read(i*pageSize, pageSize)
					if string(p) != string(q) {
						t.Fatalf("round %d: page %d differs after the restore", round, i)
					}
				}
				r := newRoom()
				dst.Init(r, stateroom.InitEvent{Restored: true})
				dst.Message(r, text("i"))
				if got := lastCounter(t, r); got.Mem != 2 || got.Global != 2 {
					t.Errorf("round %d: after the restore and an increment: %+v", round, got)
				}
			}
		})
	}
}

// TestRawBaseNotPristine covers a module whose base image differs from
// its image file in a page that instances do not write: as if its
// initialisation wrote there what depends on the instance (a random
// seed), which the base keeps from the probe instance of Load. Made here
// by changing a byte of bigdata's base page 1. An instance that leaves the
// page as mapped must have it stored, since it differs from the base; an
// instance restored from a snapshot that does not store it must get the
// base page, not the file's.
func TestRawBaseNotPristine(t *testing.T) {
	m := loadGuest(t, "bigdata", testOptions())
	if m.base[1] == nil {
		t.Fatal("bigdata's page 1 is zeros in its base image; its data should reach into it")
	}
	m.base[1][100] ^= 0xff
	const at = pageSize + 100

	// The instance leaves page 1 alone: it is stored.
	src := newService(t, m)
	snap := snapshotOf(t, src)
	if d, err := decodeSnapshot(snap); err != nil || !slices.Contains(d.raw.stored, 1) {
		t.Fatalf("page 1 differs from the base, and the snapshot stores pages %v (%v)", d.raw.stored, err)
	}
	dst := newService(t, m)
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if got, want := mustByte(t, dst, at), mustByte(t, src, at); got != want {
		t.Errorf("restored byte %#x is %#x, want the snapshot's %#x", at, got, want)
	}

	// The instance wrote page 1 to be the base's: it is not stored, and
	// the restore writes the base page over the file's.
	src2 := newService(t, m)
	src2.mem.WriteByte(at, m.base[1][100])
	snap2 := snapshotOf(t, src2)
	if d, err := decodeSnapshot(snap2); err != nil || slices.Contains(d.raw.stored, 1) {
		t.Fatalf("page 1 equals the base, and the snapshot stores pages %v (%v)", d.raw.stored, err)
	}
	dst2 := newService(t, m)
	if err := dst2.Restore(snap2); err != nil {
		t.Fatal(err)
	}
	if got := mustByte(t, dst2, at); got != m.base[1][100] {
		t.Errorf("restored byte %#x is %#x, want the base image's %#x", at, got, m.base[1][100])
	}
}

func mustByte(t *testing.T, s *service, at uint32) byte {
	t.Helper()
	b, ok := s.mem.ReadByte(at)
	if !ok {
		t.Fatalf("byte %#x is out of the memory", at)
	}
	return b
}

// TestRawBaseChunkRestored: in a stored page, a chunk equal to the base
// image's is not stored; restored into an instance whose chunk there holds
// zeros it never wrote, it must become the base's again when the base's is
// not zeros (as if instantiation wrote it in the probe instance and not in
// this one; made by changing a byte of the counter's base page 0).
func TestRawBaseChunkRestored(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	if m.base[0] == nil {
		t.Fatal("the counter's page 0 is zeros in its base image; its data should be there")
	}
	const at = 5*chunkSize + 7
	m.base[0][at] = 0x55
	src := newService(t, m)
	room := newRoom()
	src.Init(room, stateroom.InitEvent{})
	src.Message(room, text("i"))
	src.mem.WriteByte(at, 0x55) // chunk 5 equals the base's
	snap := snapshotOf(t, src)
	if d, err := decodeSnapshot(snap); err != nil || !slices.Contains(d.raw.stored, 0) || d.raw.chunks[0]&(1<<5) != 0 {
		t.Fatalf("page 0 should be stored without its chunk 5: stored %v, chunks %v (%v)", d.raw.stored, d.raw.chunks, err)
	}
	dst := newService(t, m)
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if got := mustByte(t, dst, at); got != 0x55 {
		t.Errorf("restored byte %#x is %#x, want the base image's 0x55", at, got)
	}
}
