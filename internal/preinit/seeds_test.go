package preinit

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// putState writes at off the ChaCha8 state of key after c/4 blocks, with
// i outputs of the block used, and the word w after it, laid out as the
// runtime lays out a thread's generators.
func putState(mem []byte, off int, key [4]uint64, c, i uint32, w uint64) {
	enc := binary.BigEndian.AppendUint64([]byte("chacha8:"), uint64(c/4*32))
	for _, k := range key {
		enc = binary.LittleEndian.AppendUint64(enc, k)
	}
	var g rand.ChaCha8
	if err := g.UnmarshalBinary(enc); err != nil {
		panic(err)
	}
	n := uint32(32)
	if c == 12 {
		n = 28
	}
	for k := range n {
		binary.LittleEndian.PutUint64(mem[off+8*int(k):], g.Uint64())
	}
	copy(mem[off+stateSeed:], enc[16:])
	binary.LittleEndian.PutUint32(mem[off+stateI:], i)
	binary.LittleEndian.PutUint32(mem[off+stateN:], n)
	binary.LittleEndian.PutUint32(mem[off+stateC:], c)
	binary.LittleEndian.PutUint64(mem[off+cheapWordAt:], w)
}

func TestSeededRanges(t *testing.T) {
	a, b := make([]byte, 8192), make([]byte, 8192)
	// Seeded from entropy: different in the two runs, the word after too.
	putState(a, 1024, [4]uint64{1, 2, 3, 4}, 12, 5, 77)
	putState(b, 1024, [4]uint64{5, 6, 7, 8}, 12, 5, 78)
	// Seeded by the program with a constant: the same in both.
	putState(a, 4096, [4]uint64{9, 9, 9, 9}, 0, 0, 1)
	putState(b, 4096, [4]uint64{9, 9, 9, 9}, 0, 0, 1)
	// A state whose buffer is not its key's block: not a generator.
	putState(a, 6144, [4]uint64{1, 1, 1, 1}, 4, 0, 1)
	putState(b, 6144, [4]uint64{2, 2, 2, 2}, 4, 0, 2)
	a[6144+17] ^= 1

	got := seededRanges(a, b)
	want := [][2]uint32{{1024, keyBytes}, {1024 + cheapWordAt, cheapWordSize}}
	if !slices.Equal(got, want) {
		t.Errorf("seededRanges = %v, want %v", got, want)
	}
}

// FuzzSeededRanges: any memory is scanned without a panic, and every range
// lies inside it.
func FuzzSeededRanges(f *testing.F) {
	a, b := make([]byte, 1024), make([]byte, 1024)
	putState(a, 8, [4]uint64{1, 2, 3, 4}, 8, 3, 1)
	putState(b, 8, [4]uint64{4, 3, 2, 1}, 8, 3, 2)
	f.Add(a, b)
	f.Add(a[:400], b[:700])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, r := range seededRanges(a, b) {
			if int(r[0])+int(r[1]) > len(a) || int(r[0])+int(r[1]) > len(b) {
				t.Errorf("range %v outside memories of %d and %d bytes", r, len(a), len(b))
			}
		}
	})
}
