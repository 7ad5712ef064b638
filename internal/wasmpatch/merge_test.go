package wasmpatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestMergeData merges testdata/gaps.wasm at each gap and checks which
// segments were joined, that the memory they make is the same, and that
// a module with nothing to merge comes back as it is.
func TestMergeData(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "gaps.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(in)
	for _, tc := range []struct {
		gap  int
		want []uint32 // offsets of the segments after merging
	}{
		// Nothing to merge: the module as it is, segments in its order.
		{-1, []uint32{16, 25, 4133, 35, 8232}},
		{0, []uint32{16, 25, 4133, 35, 8232}},
		{6, []uint32{16, 25, 4133, 35, 8232}},
		{FreezeMergeGap, []uint32{16, 35, 4133, 8232}},
		{8, []uint32{16, 4133, 8232}},
		{4095, []uint32{16, 4133, 8232}},
		{MaxMergeGap, []uint32{16, 8232}},
		{1 << 20, []uint32{16}},
	} {
		out, before, after, err := MergeData(in, tc.gap)
		if err != nil {
			t.Fatalf("gap %d: %v", tc.gap, err)
		}
		var got []uint32
		secs, err := parseSections(out)
		if err != nil {
			t.Fatalf("gap %d: output does not parse: %v", tc.gap, err)
		}
		for _, s := range secs {
			if s.id == secData {
				segs, ok := activeSegments(s.body)
				if !ok {
					t.Fatalf("gap %d: output's segments are not all active", tc.gap)
				}
				for _, seg := range segs {
					got = append(got, seg.offset)
				}
			}
		}
		if before != 5 || after != len(tc.want) || !equalOffsets(got, tc.want) {
			t.Errorf("gap %d: %d segments into %d at %v, want 5 into %d at %v", tc.gap, before, after, got, len(tc.want), tc.want)
		}
		if !equalImages(memoryImage(t, out), memoryImage(t, in)) {
			t.Errorf("gap %d: merging changed the initial memory", tc.gap)
		}
		if before == after && &out[0] != &in[0] {
			t.Errorf("gap %d: nothing merged, but the module was copied", tc.gap)
		}
	}
	if !bytes.Equal(in, orig) {
		t.Error("MergeData modified its input")
	}
	for _, name := range []string{"overlap.wasm", "passive.wasm", "datadrop.wasm", "globaloffset.wasm"} {
		m, _ := os.ReadFile(filepath.Join("testdata", name))
		if out, before, after, err := MergeData(m, MaxMergeGap); err != nil || before != after || !bytes.Equal(out, m) {
			t.Errorf("%s: %d segments into %d (%v); want it left as it is: merging is not safe", name, before, after, err)
		}
	}
	if _, _, _, err := MergeData([]byte("\x7fELF"), MaxMergeGap); !errors.Is(err, ErrNotWasm) {
		t.Errorf("MergeData(ELF) = %v, want ErrNotWasm", err)
	}
}

func equalOffsets(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzMergeData feeds MergeData mutations of the modules in testdata/ (plus
// the corpus in testdata/fuzz/FuzzMergeData) at a gap the fuzzer picks. It
// must never panic; when it succeeds, the memory the data segments make
// must be unchanged, no two segments left may be within the gap of each
// other, every other section must be unchanged, and merging the output
// again must merge nothing.
//
// Run: go test -fuzz=FuzzMergeData ./internal/wasmpatch
func FuzzMergeData(f *testing.F) {
	for _, b := range testModules(f) {
		for _, gap := range []uint16{0, FreezeMergeGap, MaxMergeGap} {
			f.Add(b, gap)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, gap uint16) {
		out, before, after, err := MergeData(in, int(gap))
		if err != nil {
			if out != nil {
				t.Errorf("error %v with output", err)
			}
			return
		}
		if after > before {
			t.Fatalf("%d segments became %d", before, after)
		}
		if before == after {
			if !bytes.Equal(out, in) {
				t.Error("nothing merged, but the module changed")
			}
			return
		}
		if !equalImages(memoryImage(t, out), memoryImage(t, in)) {
			t.Errorf("merging %d segments into %d changed the initial memory", before, after)
		}
		a, _ := parseSections(in)
		b, _ := parseSections(out)
		if len(a) != len(b) {
			t.Fatalf("%d sections, want %d", len(b), len(a))
		}
		for i := range a {
			if a[i].id != b[i].id || (a[i].id != secData && !bytes.Equal(a[i].body, b[i].body)) {
				t.Errorf("section %d (id %d) changed", i, a[i].id)
			}
			if b[i].id == secData {
				segs, _ := activeSegments(b[i].body)
				for j := 1; j < len(segs); j++ {
					if end := uint64(segs[j-1].offset) + uint64(len(segs[j-1].data)); uint64(segs[j].offset)-end <= uint64(gap) {
						t.Errorf("segments %d and %d are %d bytes apart, within the gap %d", j-1, j, uint64(segs[j].offset)-end, gap)
					}
				}
			}
		}
		if again, b2, a2, err := MergeData(out, int(gap)); err != nil || b2 != a2 || !bytes.Equal(again, out) {
			t.Errorf("merging the output again: %d segments into %d (%v), want nothing merged", b2, a2, err)
		}
	})
}

// TestMergeDataStaysInProportion: segments of one byte a merge gap apart
// would merge into a section hundreds of times the module's size (2,000
// of them, 20 KB, into 8 MB; a 1 MB module into 400 MB); such a module is
// left as it is, while the same segments closer together still merge.
func TestMergeDataStaysInProportion(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "gaps.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	spaced := func(apart uint32) []byte {
		secs := mustSections(t, in)
		body := binary.AppendUvarint(nil, 2000)
		for i := range uint32(2000) {
			body = append(body, 0, 0x41)
			body = appendSleb32(body, int32(i*apart))
			body = append(body, 0x0b, 1, 0xAA)
		}
		for i := range secs {
			if secs[i].id == secData {
				secs[i].body = body
			}
		}
		return appendModule(in[:8:8], secs)
	}
	far := spaced(1 + MaxMergeGap)
	out, before, after, err := MergeData(far, MaxMergeGap)
	if err != nil || before != 2000 || after != 2000 || !bytes.Equal(out, far) {
		t.Errorf("1-byte segments %d bytes apart: %d segments into %d, %d bytes (%v); want the %d-byte module left as it is",
			1+MaxMergeGap, before, after, len(out), err, len(far))
	}
	near := spaced(9)
	if _, before, after, err := MergeData(near, MaxMergeGap); err != nil || before != 2000 || after != 1 {
		t.Errorf("1-byte segments 9 bytes apart: %d segments into %d (%v); want one", before, after, err)
	}
}
