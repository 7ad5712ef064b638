package preinit

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
)

// The layout of the Go runtime's ChaCha8 generator state
// (internal/chacha8rand.State), the same for the runtime's generators and
// math/rand/v2's ChaCha8:
//
//	buf  [32]uint64 // the current block's outputs
//	seed [4]uint64  // the key
//	i, n, c uint32  // next output, outputs in buf, block counter
//
// and the runtime's thread (runtime.m) keeps its cheap generator's word
// (cheaprand uint64) right after its State, padded to 8 bytes.
const (
	stateBuf      = 0
	stateSeed     = 256
	stateI        = 288
	stateN        = 292
	stateC        = 296
	stateSize     = 304 // with padding
	keyBytes      = stateI - stateBuf
	cheapWordAt   = stateSize
	cheapWordSize = 8
)

// seededRanges returns the [address, size) ranges of a that hold a
// random generator's state seeded from entropy: every ChaCha8 state in a
// (see isChaCha8State) whose buffer and key differ in b, memory left by a
// start-up given other entropy, plus the word after it when that differs
// too (the runtime's cheap generator). A state that is the same in both
// was seeded with a constant by the program and is left alone.
func seededRanges(a, b []byte) [][2]uint32 {
	var out [][2]uint32
	for off := 0; off+stateSize <= len(a) && off+stateSize <= len(b); off += 8 {
		if !isChaCha8State(a[off : off+stateSize]) {
			continue
		}
		if bytes.Equal(a[off:off+keyBytes], b[off:off+keyBytes]) {
			continue
		}
		out = append(out, [2]uint32{uint32(off), keyBytes})
		w := off + cheapWordAt
		if w+cheapWordSize <= len(a) && w+cheapWordSize <= len(b) && !bytes.Equal(a[w:w+cheapWordSize], b[w:w+cheapWordSize]) {
			out = append(out, [2]uint32{uint32(w), cheapWordSize})
		}
		off += stateSize - 8
	}
	return out
}

// isChaCha8State reports whether s (stateSize bytes) is a ChaCha8
// generator's state: its counters are in range and its buffer is the
// block its key and counter make, recomputed with math/rand/v2's ChaCha8
// (the same generator). A false match needs 256 bytes that happen to be
// a ChaCha8 block of the 32 bytes after them.
func isChaCha8State(s []byte) bool {
	i := binary.LittleEndian.Uint32(s[stateI:])
	n := binary.LittleEndian.Uint32(s[stateN:])
	c := binary.LittleEndian.Uint32(s[stateC:])
	// chacha8rand: the counter steps by 4 up to 16; a block gives 32
	// outputs except the last before a reseed, which keeps 4 back.
	if c%4 != 0 || c >= 16 || i > n || (c == 12 && n != 28) || (c != 12 && n != 32) {
		return false
	}
	// math/rand/v2's encoding: "chacha8:", outputs used (big-endian),
	// the key (little-endian words). Used = c/4 blocks of 32.
	enc := make([]byte, 0, 48)
	enc = append(enc, "chacha8:"...)
	enc = binary.BigEndian.AppendUint64(enc, uint64(c/4*32))
	enc = append(enc, s[stateSeed:stateSeed+32]...)
	var g rand.ChaCha8
	if g.UnmarshalBinary(enc) != nil {
		return false
	}
	for k := range n {
		if g.Uint64() != binary.LittleEndian.Uint64(s[stateBuf+8*k:]) {
			return false
		}
	}
	return true
}
