package wasmhost

import (
	"bytes"
	"compress/flate"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// TestDeflateEnd: the block that ends a raw snapshot's page data is what
// compress/flate itself writes to end a stream with nothing more to say.
func TestDeflateEnd(t *testing.T) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), deflateEnd) {
		t.Fatalf("flate ends an empty stream with %x; deflateEnd is %x", buf.Bytes(), deflateEnd)
	}
}

// TestRawSnapshotReusesPages: a second raw snapshot recompresses only the
// pages that changed since the first (the others' blocks are the very same
// bytes), drops a page that went back to the base image, and restores,
// page for page, into a fresh instance, as does the first.
func TestRawSnapshotReusesPages(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 64 * pageSize
	counter := loadGuest(t, "counter", opts)
	src := rawInstance(t, counter, rawCase{"16pages", 16, 15})
	first := snapshotOf(t, src)
	checkRestoresExactly(t, counter, src, first)
	before := make([][]byte, len(src.rawPages))
	for i, rp := range src.rawPages {
		before[i] = rp.block
	}
	if before[5] == nil || before[9] == nil {
		t.Fatal("pages 5 and 9 were filled but not stored")
	}

	// One page changes, another goes back to the base image (zeros).
	p5, _ := src.mem.Read(5*pageSize, pageSize)
	p5[100] ^= 0xff
	p9, _ := src.mem.Read(9*pageSize, pageSize)
	clear(p9)
	second := snapshotOf(t, src)
	for i, rp := range src.rawPages {
		switch {
		case i == 5:
			if bytes.Equal(rp.block, before[i]) {
				t.Error("page 5 changed but its block did not")
			}
		case i == 9:
			if rp.block != nil {
				t.Error("page 9 went back to the base image but is still stored")
			}
		case len(rp.block) != len(before[i]) || (len(rp.block) > 0 && &rp.block[0] != &before[i][0]):
			t.Errorf("page %d did not change but was compressed again", i)
		}
	}
	d1, err := decodeSnapshot(first)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := decodeSnapshot(second)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := len(d1.raw.stored), len(d2.raw.stored); n != 16 || m != 15 {
		t.Errorf("the snapshots store %d and %d pages, want 16 (every page) and 15 (less page 9)", n, m)
	}
	checkRestoresExactly(t, counter, src, second)

	// The restored instance snapshots afresh (its cache is its own) and
	// its snapshot restores again.
	dst := newService(t, counter)
	if err := dst.Restore(second); err != nil {
		t.Fatal(err)
	}
	checkRestoresExactly(t, counter, dst, snapshotOf(t, dst))
}

// checkRestoresExactly restores snap into a fresh instance of m and checks
// that every page equals src's and that the guest goes on counting.
func checkRestoresExactly(t *testing.T, m *Module, src *service, snap []byte) {
	t.Helper()
	dst := newService(t, m)
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if dst.pages() != src.pages() {
		t.Fatalf("%d pages restored, want %d", dst.pages(), src.pages())
	}
	for i := range src.pages() {
		p, _ := src.mem.Read(i*pageSize, pageSize)
		q, _ := dst.mem.Read(i*pageSize, pageSize)
		if !bytes.Equal(p, q) {
			t.Fatalf("page %d differs after the restore", i)
		}
	}
	room := newRoom()
	dst.Init(room, stateroom.InitEvent{Restored: true})
	dst.Message(room, text("i"))
	if got := lastCounter(t, room); got.Pages != src.pages() {
		t.Fatalf("after the restore the guest reports %+v", got)
	}
}

// TestRawPagesSeed: the committed FuzzRestore seed raw-pages, a raw
// snapshot of several pages written block by block, restores. With
// STATEROOM_WRITE_SEEDS=1 it is written afresh first:
//
//	STATEROOM_WRITE_SEEDS=1 go test -run TestRawPagesSeed ./wasmhost
//
// (The seeds raw and raw-other-process were written by the host before
// pages were compressed apart, as one DEFLATE stream, and of kind
// "memory", whole pages: TestFuzzRestoreSeeds restores them, so snapshots
// taken before still restore. raw-pages is of kind "sparse-memory".)
func TestRawPagesSeed(t *testing.T) {
	path := filepath.Join("testdata", "fuzz", "FuzzRestore", "raw-pages")
	counter := loadGuest(t, "counter", testOptions())
	if os.Getenv("STATEROOM_WRITE_SEEDS") != "" {
		s := newService(t, counter)
		room := newRoom()
		s.Init(room, stateroom.InitEvent{})
		s.Message(room, text("i"))
		for range 3 {
			s.Message(room, text("g")) // three more pages, each with a marker
		}
		b := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", snapshotOf(t, s))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	q, ok := strings.CutPrefix(lines[min(1, len(lines)-1)], "[]byte(")
	if !ok {
		t.Fatalf("seed %s is not in the corpus format", path)
	}
	snap, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeSnapshot([]byte(snap))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.raw.stored) < 2 || d.kind != kindSparse {
		t.Fatalf("the seed is of kind %q and stores %d pages; it is there to hold several of kind %q: write it afresh", d.kind, len(d.raw.stored), kindSparse)
	}
	s := newService(t, counter)
	if err := s.Restore([]byte(snap)); err != nil {
		t.Fatalf("seed %s does not restore (%v): write it afresh (see the test's comment)", path, err)
	}
	room := newRoom()
	s.Init(room, stateroom.InitEvent{Restored: true})
	s.Message(room, text("i"))
	if got := lastCounter(t, room); got.Mem != 2 || got.Pages != 4 || got.Marker != 1003 {
		t.Fatalf("the restored guest reports %+v, want its counter at 2, 4 pages, marker 1003", got)
	}
}
