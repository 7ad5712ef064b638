package wasmpatch

import (
	"bytes"
	"testing"
)

// FuzzTakeData feeds TakeData mutations of the modules in testdata/ (plus
// the corpus in testdata/fuzz/FuzzTakeData). It must never panic; when it
// succeeds, applying the segments it returned must give the memory the
// module's own data segments give, the module it returned must hold no
// data bytes, and every other section must be unchanged.
//
// Run: go test -fuzz=FuzzTakeData ./internal/wasmpatch
func FuzzTakeData(f *testing.F) {
	for _, b := range testModules(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rest, segs, err := TakeData(in)
		if err != nil {
			if rest != nil || segs != nil {
				t.Errorf("error %v with output", err)
			}
			return
		}
		want := memoryImage(t, in)
		got := map[uint32]byte{}
		for _, s := range segs {
			for i, c := range s.Data {
				if c == 0 {
					delete(got, s.Offset+uint32(i))
				} else {
					got[s.Offset+uint32(i)] = c
				}
			}
		}
		if !equalImages(got, want) {
			t.Error("the segments do not make the module's initial memory")
		}
		if left := memoryImage(t, rest); len(left) != 0 {
			t.Errorf("the module without its data still writes %d bytes", len(left))
		}
		a, _ := parseSections(in)
		b, _ := parseSections(rest)
		var other [2][]section
		for i, secs := range [][]section{a, b} {
			for _, s := range secs {
				if s.id != secData {
					other[i] = append(other[i], s)
				}
			}
		}
		if len(other[0]) != len(other[1]) {
			t.Fatalf("%d sections besides data, want %d", len(other[1]), len(other[0]))
		}
		for i := range other[0] {
			if other[0][i].id != other[1][i].id || !bytes.Equal(other[0][i].body, other[1][i].body) {
				t.Errorf("section %d (id %d) changed", i, other[0][i].id)
			}
		}
	})
}
