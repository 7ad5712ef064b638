package wasmpatch

import (
	"encoding/binary"
	"slices"
)

// MaxMergeGap is the largest run of zero bytes between two data segments
// that [Patch] fills in to merge them. Measured on Go modules: gaps are
// mostly under 32 bytes, and at 4 KiB the data is one segment.
const MaxMergeGap = 4096

// FreezeMergeGap is the largest run of zero bytes between two runs of data
// that [Freeze] writes out rather than starting a new segment. The memory
// of the counter example after its start-up holds 0.55 MB of non-zero
// bytes in 114,000 runs over 3 MiB; by the largest gap written out:
//
//	gap     segments  data section
//	16      31,156    1.04 MB
//	24         721    1.38 MB
//	64         302    1.40 MB
//	4,096       40    1.49 MB
//
// Below 24 bytes the count explodes, and with it the time a runtime that
// copies segments at instantiation (wazero's own memory: this host's
// Options.HeapMemory, other platforms) spends evaluating one offset per
// segment; this host's mapped memory takes the segments out once at Load
// whatever their count. 64 takes a tenth of a megabyte off for a few
// hundred segments.
const FreezeMergeGap = 64

type dataSegment struct {
	offset uint32
	data   []byte
}

// mergeData rewrites the data section of secs with segments merged across
// gaps of at most maxGap zero bytes when it is safe (see Patch) and returns
// the segment counts before and after.
func mergeData(secs []section, maxGap uint64) (before, after int) {
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
	slices.SortStableFunc(segs, func(a, b dataSegment) int {
		return int(int64(a.offset) - int64(b.offset))
	})
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i-1].offset)+uint64(len(segs[i-1].data)) > uint64(segs[i].offset) {
			return len(segs), len(segs) // overlap: order matters, keep as is
		}
	}
	var merged []dataSegment
	for _, s := range segs {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			end := uint64(last.offset) + uint64(len(last.data))
			if gap := uint64(s.offset) - end; gap <= maxGap {
				last.data = append(last.data, make([]byte, gap)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		merged = append(merged, dataSegment{offset: s.offset, data: slices.Clip(s.data)})
	}
	body := binary.AppendUvarint(nil, uint64(len(merged)))
	for _, s := range merged {
		body = append(body, 0, 0x41) // flags 0 (active, memory 0), i32.const
		body = appendSleb32(body, int32(s.offset))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, uint64(len(s.data)))
		body = append(body, s.data...)
	}
	data.body = body
	return len(segs), len(merged)
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
