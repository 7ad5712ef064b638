package wasmpatch

import "fmt"

// reader decodes the primitives of the WebAssembly binary format from b.
// The first error sticks; later reads return zero values, so parsers read
// straight through and check once.
type reader struct {
	b    []byte
	off  int
	what string // the part being read, for errors
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at offset %d: %s", ErrMalformed, r.what, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("%s: unexpected end", field)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func (r *reader) u32(field string) uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte(field)
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				r.fail("%s: %d does not fit 32 bits", field, v)
				return 0
			}
			return uint32(v)
		}
	}
	r.fail("%s: LEB128 longer than 5 bytes", field)
	return 0
}

// sleb reads a signed LEB128 of at most bits bits.
func (r *reader) sleb(field string, bits int) int64 {
	var v int64
	shift := 0
	for {
		if shift >= (bits+6)/7*7 {
			r.fail("%s: signed LEB128 longer than %d bytes", field, (bits+6)/7)
			return 0
		}
		c := r.byte(field)
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

func (r *reader) bytes(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("%s of %d bytes, %d left", field, n, len(r.b)-r.off)
		return nil
	}
	b := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) name(field string) string {
	return string(r.bytes(int(r.u32(field+" length")), field))
}

func (r *reader) limits() {
	switch flags := r.byte("limits flags"); flags {
	case 0x00, 0x04:
		r.u32("limits min")
	case 0x01, 0x03, 0x05, 0x07:
		r.u32("limits min")
		r.u32("limits max")
	case 0x02, 0x06:
		r.u32("limits min")
	default:
		r.fail("limits flags %#x", flags)
	}
}

// constExpr reads a constant expression and returns its value if it is a
// lone i32.const, else -1. Only the instructions constant expressions of
// data offsets use are accepted.
func (r *reader) constExpr() int64 {
	var value int64 = -1
	for n := 0; r.err == nil; n++ {
		op := r.byte("constant expression")
		switch op {
		case 0x0b: // end
			return value
		case 0x41: // i32.const
			v := r.sleb("i32.const", 32)
			if n == 0 {
				value = int64(uint32(int32(v)))
			} else {
				value = -1
			}
		case 0x42: // i64.const
			r.sleb("i64.const", 64)
			value = -1
		case 0x23: // global.get
			r.u32("global index")
			value = -1
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
			value = -1
		default:
			r.fail("unsupported instruction %#x in a constant expression", op)
		}
	}
	return -1
}

// done reports the first error, or that bytes were left over.
func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}
