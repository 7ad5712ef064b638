package wasmpatch

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// MaxMergeGap is the largest run of zero bytes between two data segments
// that a host merges across at load time (package wasmhost, through
// [MergeData]) before it compiles a module for a runtime that copies every
// segment into every instance (wazero's own memory). Such a runtime pays
// per segment and per instance: wazero evaluated one offset per segment
// (44% of an instantiation for 34,000 segments, docs/PERFORMANCE.md, "Go
// guests") and keeps a 24-byte data instance per segment (0.68 MB per room
// for the counter's 28,000). At 4 KiB a Go module's data is a few dozen
// segments; the zeros filled in are copied into memory that is zero
// already, a fraction of a millisecond. Modules are not written this way
// (see [FreezeMergeGap]): the host merges once, at load.
const MaxMergeGap = 4096

// FreezeMergeGap is the largest run of zero bytes between two runs of data
// that [Freeze] and [Patch] write out rather than starting a new segment:
// the gap that makes the data section, and the module, smallest. A segment
// costs 8 to 10 bytes of header (flags, i32.const, a 3- or 4-byte offset,
// end, a 1- to 3-byte size), so writing out fewer zeros than that is
// cheaper than starting a segment, and writing more is dearer. The memory
// of the counter example after its start-up (2.62 MB up to its last
// non-zero byte, 465,207 bytes not zero), measured by
// TestFreezeMergeGapSmallest, gives by the largest gap written out:
//
//	gap     segments  data section
//	0         96,765  1,153,341 B
//	4         47,332    899,938 B
//	6         36,262    882,198 B
//	7         28,292    881,642 B  <- smallest
//	8         27,898    881,950 B
//	12        27,410    883,180 B
//	16        26,595    888,771 B
//	24           649  1,174,024 B
//	64           291  1,184,272 B  (the gap until issue 14's fourth step)
//	4,096         38  1,277,899 B
//
// (The counter linked fmt then: its memory gave the same minimum at 7,
// 1,051,620 B against 1,395,454 B at 64.) The Go linker itself splits its
// data at runs of 8 zero bytes or more, so Patch at this gap keeps the
// linker's segments. Tens of thousands of segments cost a host nothing
// per instance when it takes the data out once at load (wasmhost's mapped
// memory, [TakeData]) or merges it once at load ([MaxMergeGap], wasmhost's
// heap memory); a host on another runtime that pays per segment at each
// instantiation can merge once the same way.
const FreezeMergeGap = 7

// maxMergeGrowth bounds how many times its data section's size a merged
// data section may be (plus 1 MiB, so that a small module's few segments
// a page apart still merge) in [MergeData] and [Patch]: a module whose
// merge would write more is left as it is.
const maxMergeGrowth = 4

type dataSegment struct {
	offset uint32
	data   []byte
}

// MergeData returns a copy of module whose active data segments are merged
// across runs of at most maxGap zero bytes, with before and after the
// segment counts. It is the one place segments are merged: at build time
// ([Patch] and [Freeze], with [FreezeMergeGap], for a small file) and at
// load time (package wasmhost, with [MaxMergeGap], for a runtime that
// copies every segment into every instance). A module it leaves as it is
// (nothing to merge, or merging is not safe: see [Patch]) is returned
// itself, not a copy. Malformed input is an error wrapping [ErrNotWasm]
// or [ErrMalformed]; module is not modified.
func MergeData(module []byte, maxGap int) (out []byte, before, after int, err error) {
	secs, err := parseSections(module)
	if err != nil {
		return nil, 0, 0, err
	}
	if maxGap < 0 {
		maxGap = 0
	}
	before, after = mergeData(secs, uint64(maxGap), maxMergeGrowth)
	if before == after {
		return module, before, after, nil
	}
	return appendModule(module[:8], secs), before, after, nil
}

// mergeData rewrites the data section of secs with segments merged across
// gaps of at most maxGap zero bytes when it is safe (see Patch) and returns
// the segment counts before and after; [MergeData] on parsed sections.
// With growth > 0 it leaves the section as it is when the merged section
// would be more than growth times its size (plus 1 MiB): modules from
// elsewhere are merged in proportion to themselves, while [Freeze], whose
// section is the module's own memory, already held whole, passes 0.
func mergeData(secs []section, maxGap, growth uint64) (before, after int) {
	var data *section
	for i := range secs {
		switch secs[i].id {
		case secDataCount:
			return 0, 0 // segments may be referred to by index
		case secData:
			data = &secs[i]
		}
	}
	if data == nil {
		return 0, 0
	}
	segs, ok := activeSegments(data.body)
	if !ok || len(segs) < 2 {
		return len(segs), len(segs)
	}
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i-1].offset)+uint64(len(segs[i-1].data)) > uint64(segs[i].offset) {
			return len(segs), len(segs) // overlap: order matters, keep as is
		}
	}
	// Group the segments (each group one merged segment, spanning from its
	// first segment's offset to its last's end), then write each group's
	// bytes straight into the new section: zeros for the gaps, no copy
	// per merge (28,000 segments of a Go module merge in a few ms).
	type group struct {
		offset uint32
		end    uint64
		segs   []dataSegment
	}
	var groups []group
	var size uint64
	for i, s := range segs {
		end := uint64(s.offset) + uint64(len(s.data))
		if n := len(groups); n > 0 && uint64(s.offset)-groups[n-1].end <= maxGap {
			g := &groups[n-1]
			g.segs = segs[i-len(g.segs) : i+1]
			g.end = end
			continue
		}
		groups = append(groups, group{offset: s.offset, end: end, segs: segs[i : i+1]})
		size += 16
	}
	for _, g := range groups {
		size += g.end - uint64(g.offset)
	}
	// The zeros written out must stay in proportion to the module: segments
	// of one byte 4 KiB apart would otherwise turn a 1 MB module into a
	// 400 MB section (a Go module's merge writes 1.45 times its data
	// section). Such a module is left as it is.
	if growth > 0 && size > growth*uint64(len(data.body))+1<<20 {
		return len(segs), len(segs)
	}
	body := binary.AppendUvarint(make([]byte, 0, int(size)+binary.MaxVarintLen32), uint64(len(groups)))
	for _, g := range groups {
		body = append(body, 0, 0x41) // flags 0 (active, memory 0), i32.const
		body = appendSleb32(body, int32(g.offset))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, g.end-uint64(g.offset))
		at := uint64(g.offset)
		for _, s := range g.segs {
			body = append(body, make([]byte, uint64(s.offset)-at)...) // the gap; no allocation
			body = append(body, s.data...)
			at = uint64(s.offset) + uint64(len(s.data))
		}
	}
	data.body = body
	return len(segs), len(groups)
}

// activeSegments parses a data section whose segments are all active in
// memory 0 at an i32.const offset; ok is false for anything else. The
// section was already checked by findMarker, so errors just mean "don't".
func activeSegments(body []byte) (segs []dataSegment, ok bool) {
	r := reader{b: body, what: "data section"}
	n := r.u32("segment count")
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.u32("segment flags") != 0 {
			return nil, false
		}
		off := r.constExpr()
		data := r.bytes(int(r.u32("segment size")), "segment data")
		if off < 0 || r.err != nil {
			return nil, false
		}
		segs = append(segs, dataSegment{offset: uint32(off), data: data})
	}
	return segs, r.done() == nil
}
