package wasmhost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/tetratelabs/wazero/api"
)

// The host's raw-memory snapshot (see snapshot.go) must read and write
// every mutable global of an instance: a Rust module's __stack_pointer, an
// allocator's heap top, Go's SP. wazero reaches globals through exports
// only (api.Module.ExportedGlobal), and linkers export none of these. So
// before compiling, the host adds an export for each mutable global the
// module defines, under a name no linker makes (globalExportPrefix plus
// the global's index). An extra export changes nothing the guest can see.
//
// Why patch rather than reach into wazero's module instance with
// reflection: the patch depends on the binary format, which is stable, and
// not on wazero's internals, which are not.

// globalExportPrefix starts the names of the exports exportGlobals adds.
const globalExportPrefix = "stateroom:global:"

// globalExport is a mutable global of a module, exported under name by
// exportGlobals.
type globalExport struct {
	name  string
	index uint32 // in the module's global index space
	typ   api.ValueType
}

// errNoPatch is wrapped by the errors of exportGlobals.
var errNoPatch = errors.New("cannot export the module's mutable globals")

// Section ids and external kinds of the binary format.
const (
	secImport = 2
	secGlobal = 6
	secExport = 7

	externFunc   = 0
	externTable  = 1
	externMemory = 2
	externGlobal = 3
	externTag    = 4
)

// exportGlobals returns the module bin with an export added for every
// mutable global it defines, and those globals in index order. bin is left
// alone, and returned as it is when it has no mutable global. Malformed
// input, or a construct the parser does not know, is an error wrapping
// errNoPatch, never a panic: the caller then compiles bin as it is, and
// wazero says what is wrong with it, if anything.
func exportGlobals(bin []byte) ([]byte, []globalExport, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" || binary.LittleEndian.Uint32(bin[4:8]) != 1 {
		return nil, nil, fmt.Errorf("%w: not a version 1 WebAssembly binary", errNoPatch)
	}
	type section struct {
		id         byte
		start, end int // of the whole section, header included
		body       []byte
	}
	var secs []section
	r := wasmReader{b: bin, off: 8}
	for r.off < len(bin) && r.err == nil {
		start := r.off
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		secs = append(secs, section{id: id, start: start, end: r.off, body: body})
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("%w: section headers: %w", errNoPatch, r.err)
	}

	var importedGlobals uint32
	var globals []globalExport
	exportAt := -1
	taken := map[string]bool{}
	for i, s := range secs {
		var err error
		switch s.id {
		case secImport:
			importedGlobals, err = countImportedGlobals(s.body)
		case secGlobal:
			globals, err = mutableGlobals(s.body, importedGlobals)
		case secExport:
			exportAt = i
			err = exportNames(s.body, taken)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: section %d: %w", errNoPatch, s.id, err)
		}
	}
	if exportAt < 0 {
		return nil, nil, fmt.Errorf("%w: the module has no export section", errNoPatch)
	}
	for _, g := range globals {
		if taken[g.name] {
			return nil, nil, fmt.Errorf("%w: the module already exports a %q", errNoPatch, g.name)
		}
	}
	if len(globals) == 0 {
		return bin, nil, nil
	}

	// The new export section: the old count plus ours, the old entries
	// byte for byte, then ours.
	old := secs[exportAt].body
	er := wasmReader{b: old}
	n := er.u32()
	body := binary.AppendUvarint(nil, uint64(n)+uint64(len(globals)))
	body = append(body, old[er.off:]...)
	for _, g := range globals {
		body = binary.AppendUvarint(body, uint64(len(g.name)))
		body = append(body, g.name...)
		body = append(body, externGlobal)
		body = binary.AppendUvarint(body, uint64(g.index))
	}
	out := make([]byte, 0, len(bin)+len(body)-len(old)+5)
	out = append(out, bin[:secs[exportAt].start]...)
	out = append(out, secExport)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, body...)
	out = append(out, bin[secs[exportAt].end:]...)
	return out, globals, nil
}

// countImportedGlobals returns how many globals the import section
// imports: they come first in the global index space.
func countImportedGlobals(body []byte) (uint32, error) {
	r := wasmReader{b: body}
	var globals uint32
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case externFunc:
			r.u32()
		case externTable:
			r.byte() // reference type
			r.limits()
		case externMemory:
			r.limits()
		case externGlobal:
			r.byte() // value type
			r.byte() // mutability
			globals++
		case externTag:
			r.byte() // attribute
			r.u32()
		default:
			r.fail("import kind %d", kind)
		}
	}
	return globals, r.done()
}

// mutableGlobals reads the global section and returns its mutable globals,
// named for export. first is the index of its first global (the number of
// imported globals).
func mutableGlobals(body []byte, first uint32) ([]globalExport, error) {
	r := wasmReader{b: body}
	var out []globalExport
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		typ := r.byte()
		mut := r.byte()
		r.constExpr()
		if r.err != nil || mut == 0 {
			continue
		}
		if mut != 1 {
			r.fail("global mutability %d", mut)
			continue
		}
		idx := first + i
		if idx < first {
			r.fail("more than 2^32 globals")
			continue
		}
		out = append(out, globalExport{name: globalExportPrefix + strconv.FormatUint(uint64(idx), 10), index: idx, typ: typ})
	}
	return out, r.done()
}

// exportNames adds the names the export section holds to taken.
func exportNames(body []byte, taken map[string]bool) error {
	r := wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		taken[string(r.bytes(int(r.u32())))] = true
		r.byte() // kind
		r.u32()  // index
	}
	return r.done()
}

// wasmReader reads the primitives of the binary format. The first error
// sticks and later reads return zero values, so parsers read straight
// through and check once.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("offset %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// leb reads an unsigned LEB128 of at most maxBytes bytes.
func (r *wasmReader) leb(maxBytes int) uint64 {
	var v uint64
	for i := range maxBytes {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 longer than %d bytes", maxBytes)
	return 0
}

func (r *wasmReader) u32() uint32 {
	v := r.leb(5)
	if v > 1<<32-1 {
		r.fail("%d does not fit 32 bits", v)
		return 0
	}
	return uint32(v)
}

func (r *wasmReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("%d bytes wanted, %d left", n, len(r.b)-r.off)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// limits skips the limits of a table or memory, 32- or 64-bit.
func (r *wasmReader) limits() {
	flags := r.byte()
	if flags > 7 {
		r.fail("limits flags %#x", flags)
		return
	}
	r.leb(10)
	if flags&1 != 0 {
		r.leb(10)
	}
}

// constExpr skips a constant expression: the instructions of WebAssembly
// 2.0 and the extended-const proposal, up to its end.
func (r *wasmReader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41, 0x42: // i32.const, i64.const
			r.leb(10)
		case 0x43: // f32.const
			r.bytes(4)
		case 0x44: // f64.const
			r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // i32/i64 add, sub, mul
		case 0xfd: // v128.const
			if sub := r.u32(); sub != 12 {
				r.fail("constant expression opcode 0xfd %d", sub)
				return
			}
			r.bytes(16)
		default:
			r.fail("constant expression opcode %#x", op)
		}
	}
}

// done reports the first error, or trailing bytes.
func (r *wasmReader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

// globalTypeName names a global's value type, including the ones
// api.ValueTypeName does not know.
func globalTypeName(t api.ValueType) string {
	switch t {
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	}
	if name := api.ValueTypeName(t); name != "unknown" {
		return name
	}
	return fmt.Sprintf("%#x", t)
}
