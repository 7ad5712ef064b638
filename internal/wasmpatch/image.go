package wasmpatch

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrDataNotConstant: a data segment of the module is passive, targets
// another memory, or has an offset that is not a lone i32.const, so its
// effect on memory is not known before instantiation. Returned by
// [TakeData].
var ErrDataNotConstant = errors.New("wasmpatch: data segments are not all active at constant offsets")

// Segment is an active data segment of memory 0: instantiation writes Data
// at Offset.
type Segment struct {
	Offset uint32
	Data   []byte
}

// End is the address just past the segment, which may exceed 32 bits.
func (s Segment) End() uint64 { return uint64(s.Offset) + uint64(len(s.Data)) }

// TakeData returns module without the bytes of its data segments, and the
// segments in the order instantiation applies them (later ones overwrite
// earlier ones where they overlap). A host that initialises an instance's
// memory itself, from one image shared by every instance of the module,
// compiles rest: the runtime then copies nothing into each new instance.
//
// Every segment must be active in memory 0 at an i32.const offset, else
// the error wraps ErrDataNotConstant (and ErrMalformed when the data
// section does not parse). Without a data count section nothing can refer
// to a segment by index (memory.init and data.drop need that section), so
// the data section is dropped; with one, each segment stays, at its
// offset, with no bytes, so indices and the count stay valid and the
// runtime still checks each offset against the memory's size. A module
// without data segments is returned as it is, with no segments.
//
// The segments' Data alias module; rest does not. module is not modified.
func TakeData(module []byte) (rest []byte, segs []Segment, err error) {
	secs, err := parseSections(module)
	if err != nil {
		return nil, nil, err
	}
	data, count := -1, false
	for i, s := range secs {
		switch s.id {
		case secData:
			data = i
		case secDataCount:
			count = true
		}
	}
	if data < 0 {
		return module, nil, nil
	}
	active, ok := activeSegments(secs[data].body)
	if !ok {
		return nil, nil, fmt.Errorf("%w (or the data section is malformed)", ErrDataNotConstant)
	}
	segs = make([]Segment, len(active))
	for i, a := range active {
		segs[i] = Segment{Offset: a.offset, Data: a.data}
	}

	kept := make([]section, 0, len(secs))
	for i, s := range secs {
		if i == data {
			if !count {
				continue
			}
			body := binary.AppendUvarint(nil, uint64(len(segs)))
			for _, seg := range segs {
				body = append(body, 0, 0x41) // flags 0 (active, memory 0), i32.const
				body = appendSleb32(body, int32(seg.Offset))
				body = append(body, 0x0b, 0) // end, no bytes
			}
			s.body = body
		}
		kept = append(kept, s)
	}
	return appendModule(module[:8], kept), segs, nil
}

// appendModule appends the sections to head (the magic and version).
func appendModule(head []byte, secs []section) []byte {
	n := len(head)
	for _, s := range secs {
		n += 1 + binary.MaxVarintLen32 + len(s.body)
	}
	out := append(make([]byte, 0, n), head...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}
