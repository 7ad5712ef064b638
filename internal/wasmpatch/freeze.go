package wasmpatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// This file turns an instance's state back into a module, as Wizer does for
// Rust and C: package internal/preinit runs a module's start function once
// at build time and [Freeze] writes the memory and globals it left into the
// module, so every later instantiation starts where start-up ended.

// ErrUnsupported: the module uses a construct [Freeze] cannot carry over
// (passive data segments, an imported or 64-bit memory, a mutable global
// of a reference or vector type, ...).
var ErrUnsupported = errors.New("wasmpatch: module cannot be pre-initialised")

// PageSize is the size of a WebAssembly memory page.
const PageSize = 65536

// globalExportPrefix starts the names under which [ExportState] exports
// mutable globals; no linker makes such a name. (package wasmhost exports
// them through [ExportGlobals] under a prefix of its own for raw
// snapshots; the two never meet, since each patches its own copy.)
const globalExportPrefix = "stateroom:preinit:global:"

// Value types a mutable global may have for [Freeze].
const (
	typeI32 = 0x7f
	typeI64 = 0x7e
	typeF32 = 0x7d
	typeF64 = 0x7c
)

// MutableGlobal is a mutable global a module defines.
type MutableGlobal struct {
	// Index is the global's index in the module's global index space.
	Index uint32
	// Type is its value type as the binary format encodes it: 0x7f i32,
	// 0x7e i64, 0x7d f32, 0x7c f64, or another ([CheckNumeric] refuses
	// those).
	Type byte
	// Export is the name [ExportGlobals] or [ExportState] exported it
	// under.
	Export string
}

// StartExport is the name under which [ExportState] exports the start
// function.
const StartExport = "stateroom:preinit:start"

// ExportGlobals returns a copy of module with an export added for every
// mutable global it defines, named prefix followed by the global's index,
// and those globals in index order (their Export fields set). A runtime
// that reaches an instance only through its exports (wazero) can then read
// and write them: package internal/preinit to freeze start-up, package
// wasmhost to take raw snapshots. An extra export changes nothing the
// guest can see. Globals of any value type are exported; [CheckNumeric]
// says whether their values can be saved. A module without mutable
// globals is returned as it is (the same slice). Malformed input is an
// error wrapping [ErrMalformed] or [ErrNotWasm], and so is a prefix that
// makes a name the module already exports; never a panic.
func ExportGlobals(module []byte, prefix string) ([]byte, []MutableGlobal, error) {
	secs, err := parseSections(module)
	if err != nil {
		return nil, nil, err
	}
	secs, globals, err := exportGlobals(secs, prefix)
	if err != nil {
		return nil, nil, err
	}
	if len(globals) == 0 {
		return module, nil, nil
	}
	return appendModule(module[:8], secs), globals, nil
}

// exportGlobals is [ExportGlobals] on parsed sections, with extra exports
// added after the globals'. secs is not modified.
func exportGlobals(secs []section, prefix string, extra ...export) ([]section, []MutableGlobal, error) {
	var imported uint32
	var globals []MutableGlobal
	var exports []export
	var err error
	for _, s := range secs {
		switch s.id {
		case secImport:
			imported, err = countImportedGlobals(s.body)
		case secGlobal:
			globals, err = mutableGlobals(s.body, imported)
		case secExport:
			exports, err = parseExports(s.body)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if len(globals) == 0 && len(extra) == 0 {
		return secs, nil, nil
	}
	taken := make(map[string]bool, len(exports))
	for _, e := range exports {
		taken[e.name] = true
	}
	for i := range globals {
		globals[i].Export = prefix + strconv.FormatUint(uint64(globals[i].Index), 10)
		extra = append(extra, export{name: globals[i].Export, kind: kindGlobal, index: globals[i].Index})
	}
	for _, e := range extra {
		if taken[e.name] {
			return nil, nil, fmt.Errorf("%w: the module already exports a %q, a name this patch adds", ErrMalformed, e.name)
		}
		taken[e.name] = true
	}
	exports = append(exports, extra...)
	return replaceSection(slices.Clone(secs), section{id: secExport, body: encodeExports(exports)}), globals, nil
}

// CheckNumeric returns an error naming the first of globals whose value
// is not a number (a v128 or a reference), which neither a frozen module
// nor a raw snapshot can hold: its bits are more than the 64 wazero's
// api.Global carries, or a host pointer.
func CheckNumeric(globals []MutableGlobal) error {
	for _, g := range globals {
		switch g.Type {
		case typeI32, typeI64, typeF32, typeF64:
		default:
			return fmt.Errorf("mutable global %d is of type %s; only i32, i64, f32 and f64 values can be saved", g.Index, typeName(g.Type))
		}
	}
	return nil
}

// typeName names a value type as the text format does.
func typeName(t byte) string {
	switch t {
	case typeI32:
		return "i32"
	case typeI64:
		return "i64"
	case typeF32:
		return "f32"
	case typeF64:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	}
	return fmt.Sprintf("%#x", t)
}

// ExportState returns a copy of module prepared for taking a snapshot
// with a runtime that reaches an instance only through its exports
// (wazero): every mutable global the module defines is exported (as
// [ExportGlobals] does, under the Export names of the returned globals, in
// index order), and the start function is exported as [StartExport]
// instead of running at instantiation, so that the caller runs it as an
// ordinary call, under its own deadline. A mutable global whose value
// [Freeze] could not write (a reference or a vector) is an
// [ErrUnsupported] error, and so is a module without a start function.
func ExportState(module []byte) ([]byte, []MutableGlobal, error) {
	secs, err := parseSections(module)
	if err != nil {
		return nil, nil, err
	}
	start := slices.IndexFunc(secs, func(s section) bool { return s.id == secStart })
	if start < 0 {
		return nil, nil, errNoStart
	}
	r := reader{b: secs[start].body, what: "start section"}
	fn := r.u32("start function")
	if err := r.done(); err != nil {
		return nil, nil, err
	}
	secs = slices.Delete(slices.Clone(secs), start, start+1)
	secs, globals, err := exportGlobals(secs, globalExportPrefix, export{name: StartExport, kind: kindFunc, index: fn})
	if err != nil {
		return nil, nil, err
	}
	if err := CheckNumeric(globals); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return appendModule(module[:8], secs), globals, nil
}

// errNoStart: nothing to snapshot after.
var errNoStart = fmt.Errorf("%w: it has no start function, so there is no start-up to skip (already pre-initialised?)", ErrUnsupported)

// Snapshot is the state of an instance that [Freeze] writes into its
// module.
type Snapshot struct {
	// Memory is the whole linear memory; its length, a multiple of
	// PageSize, becomes the memory's minimum size.
	Memory []byte
	// Globals holds the value of each mutable global, in the order and
	// for the globals [ExportState] returned, as wazero's
	// api.Global.Get carries them (the bits of the value, zero-extended).
	Globals []uint64
}

// FreezeResult describes what [Freeze] wrote.
type FreezeResult struct {
	// Pages is the memory's new minimum, in pages.
	Pages uint32
	// Segments is the number of data segments written and DataBytes
	// their total size: runs of more than FreezeMergeGap zero bytes are
	// left out, since a new memory is zero-filled.
	Segments, DataBytes int
	// Globals is the number of mutable globals whose initializers now
	// hold their snapshot values.
	Globals int
}

// Freeze returns a copy of module that, instantiated, is in the state of
// snap without running any of its code: the memory's minimum is the
// snapshot's size, its data segments are the snapshot's memory (zero runs
// left out), each mutable global is initialized to its snapshot value, and
// the start section is gone. module is the module the snapshot was taken
// from, before [ExportState]; it must have a start function (the start-up
// that was run) and must not export _initialize (which a host would run
// again). Anything else it holds (code, tables, exports, custom sections)
// is copied byte for byte.
//
// A module whose data segments may be used after instantiation (passive
// segments, a data count section for memory.init and data.drop), whose
// memory is imported, shared or 64-bit, or which has more than one memory,
// is refused with [ErrUnsupported]: its snapshot would not be the whole
// story. Go modules have none of these. Tables are not part of a snapshot:
// a start-up that changed one (table.set, table.grow) would not be carried
// over, and Go's never does (its table is the element segment's, fixed).
func Freeze(module []byte, snap Snapshot) ([]byte, FreezeResult, error) {
	var res FreezeResult
	if len(snap.Memory)%PageSize != 0 || len(snap.Memory)/PageSize > 65536 {
		return nil, res, fmt.Errorf("wasmpatch: snapshot memory of %d bytes is not a whole number of pages within 4 GiB", len(snap.Memory))
	}
	res.Pages = uint32(len(snap.Memory) / PageSize)
	secs, err := parseSections(module)
	if err != nil {
		return nil, res, err
	}
	var imported uint32
	var globals []MutableGlobal
	hasStart, hasMemory := false, false
	for i := range secs {
		s := &secs[i]
		switch s.id {
		case secImport:
			if err := checkImportsFreezable(s.body); err != nil {
				return nil, res, err
			}
			if imported, err = countImportedGlobals(s.body); err != nil {
				return nil, res, err
			}
		case secMemory:
			if s.body, err = resizeMemory(s.body, res.Pages); err != nil {
				return nil, res, err
			}
			hasMemory = true
		case secGlobal:
			if globals, err = mutableGlobals(s.body, imported); err != nil {
				return nil, res, err
			}
			if err := CheckNumeric(globals); err != nil {
				return nil, res, fmt.Errorf("%w: %w", ErrUnsupported, err)
			}
			if len(globals) != len(snap.Globals) {
				return nil, res, fmt.Errorf("wasmpatch: the module has %d mutable globals, the snapshot %d values", len(globals), len(snap.Globals))
			}
			if s.body, err = setGlobals(s.body, snap.Globals); err != nil {
				return nil, res, err
			}
			res.Globals = len(globals)
		case secExport:
			exports, err := parseExports(s.body)
			if err != nil {
				return nil, res, err
			}
			for _, e := range exports {
				if e.name == initExport {
					return nil, res, fmt.Errorf("%w: it exports %s as well as having a start function; a host would run start-up again", ErrUnsupported, initExport)
				}
			}
		case secStart:
			hasStart = true
		case secDataCount:
			return nil, res, fmt.Errorf("%w: it has a data count section (its data segments are used by memory.init or data.drop)", ErrUnsupported)
		case secData:
			if _, ok := activeSegments(s.body); !ok {
				return nil, res, fmt.Errorf("%w: its data segments are not all active at constant offsets in memory 0", ErrUnsupported)
			}
		}
	}
	if !hasStart {
		return nil, res, errNoStart
	}
	if !hasMemory {
		return nil, res, fmt.Errorf("%w: it defines no memory", ErrUnsupported)
	}
	if len(globals) == 0 && len(snap.Globals) != 0 {
		return nil, res, fmt.Errorf("wasmpatch: the module has no mutable globals, the snapshot %d values", len(snap.Globals))
	}

	kept := secs[:0:0]
	for _, s := range secs {
		if s.id != secStart {
			kept = append(kept, s)
		}
	}
	// In place of the old data section, so custom sections that must
	// follow it (the name section) still do.
	kept = replaceSection(kept, section{id: secData, body: imageSegments(snap.Memory)})
	// A memory with more runs than runtimes take is merged coarser: the
	// gap doubles (at most 30 times: from 7 past 2^32) until the segments fit.
	_, merged := mergeData(kept, FreezeMergeGap, 0)
	for gap := uint64(FreezeMergeGap); merged > MaxSegments && gap < 1<<32; {
		gap *= 2
		_, merged = mergeData(kept, gap, 0)
	}
	res.Segments = merged
	for _, s := range kept {
		if s.id == secData {
			res.DataBytes = segmentBytes(s.body)
		}
	}
	return appendModule(module[:8], kept), res, nil
}

// MaxSegments is the most data segments [Freeze] writes: Wasmtime's
// validator (wasmparser) and V8 refuse a module with more than 100,000,
// and the Go linker caps its own output there for that reason. A memory
// whose runs of data would need more at [FreezeMergeGap] is written with a
// larger gap (the counter's needs 28,292).
const MaxSegments = 100_000

// imageSegments encodes a data section with one active segment for each
// run of non-zero bytes of mem; mergeData then joins runs separated by
// short gaps.
func imageSegments(mem []byte) []byte {
	var runs [][2]int
	for i := 0; i < len(mem); {
		if mem[i] == 0 {
			i++
			continue
		}
		j := i
		for j < len(mem) && mem[j] != 0 {
			j++
		}
		runs = append(runs, [2]int{i, j})
		i = j
	}
	body := binary.AppendUvarint(nil, uint64(len(runs)))
	for _, r := range runs {
		body = append(body, 0, 0x41) // active in memory 0 at i32.const
		body = appendSleb32(body, int32(uint32(r[0])))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, uint64(r[1]-r[0]))
		body = append(body, mem[r[0]:r[1]]...)
	}
	return body
}

// segmentBytes sums the data of an active data section.
func segmentBytes(body []byte) int {
	segs, _ := activeSegments(body)
	n := 0
	for _, s := range segs {
		n += len(s.data)
	}
	return n
}

// checkImportsFreezable refuses imported memories (their contents belong
// to the host) and imported mutable globals (their values too).
func checkImportsFreezable(body []byte) error {
	r := reader{b: body, what: "import section"}
	n := r.u32("import count")
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod := r.name("import module")
		name := r.name("import name")
		switch kind := r.byte("import kind"); kind {
		case kindFunc:
			r.u32("type index")
		case kindTable:
			r.byte("table type")
			r.limits()
		case kindMemory:
			if r.err == nil {
				return fmt.Errorf("%w: its memory is imported (%s.%s)", ErrUnsupported, mod, name)
			}
		case kindGlobal:
			r.byte("global type")
			if r.byte("global mutability") == 1 && r.err == nil {
				return fmt.Errorf("%w: it imports the mutable global %s.%s", ErrUnsupported, mod, name)
			}
		case kindTag:
			r.byte("tag attribute")
			r.u32("tag type index")
		default:
			r.fail("import kind %d", kind)
		}
	}
	return r.done()
}

// resizeMemory rewrites a memory section of one memory with the minimum
// pages, keeping its maximum.
func resizeMemory(body []byte, pages uint32) ([]byte, error) {
	r := reader{b: body, what: "memory section"}
	if n := r.u32("memory count"); n != 1 && r.err == nil {
		return nil, fmt.Errorf("%w: it defines %d memories", ErrUnsupported, n)
	}
	flags := r.byte("limits flags")
	if r.err == nil && flags != 0 && flags != 1 {
		return nil, fmt.Errorf("%w: its memory is shared or 64-bit (limits flags %#x)", ErrUnsupported, flags)
	}
	r.u32("memory minimum")
	var max uint32
	if flags == 1 {
		max = r.u32("memory maximum")
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	if flags == 1 && max < pages {
		return nil, fmt.Errorf("%w: the initialised memory (%d pages) is larger than the memory's maximum (%d pages)", ErrUnsupported, pages, max)
	}
	out := []byte{1, flags}
	out = binary.AppendUvarint(out, uint64(pages))
	if flags == 1 {
		out = binary.AppendUvarint(out, uint64(max))
	}
	return out, nil
}

// mutableGlobals lists the mutable globals a global section defines, of
// any value type; imported is the number of imported globals, which come
// first in the index space.
func mutableGlobals(body []byte, imported uint32) ([]MutableGlobal, error) {
	r := reader{b: body, what: "global section"}
	n := r.u32("global count")
	var out []MutableGlobal
	for i := uint32(0); i < n && r.err == nil; i++ {
		typ := r.byte("global type")
		mut := r.byte("global mutability")
		r.skipConstExpr()
		if r.err != nil {
			break
		}
		if mut > 1 {
			r.fail("global %d has mutability %d", i, mut)
			break
		}
		if mut == 0 {
			continue
		}
		if uint64(imported)+uint64(i) > math.MaxUint32 {
			r.fail("too many globals")
			break
		}
		out = append(out, MutableGlobal{Index: imported + i, Type: typ})
	}
	return out, r.done()
}

// setGlobals rewrites a global section with each mutable global's
// initializer replaced by a constant of the next of values.
func setGlobals(body []byte, values []uint64) ([]byte, error) {
	r := reader{b: body, what: "global section"}
	n := r.u32("global count")
	out := binary.AppendUvarint(nil, uint64(n))
	next := 0
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.off
		typ := r.byte("global type")
		mut := r.byte("global mutability")
		exprAt := r.off
		r.skipConstExpr()
		if r.err != nil {
			break
		}
		if mut == 0 {
			out = append(out, body[start:r.off]...)
			continue
		}
		out = append(out, body[start:exprAt]...)
		v := values[next]
		next++
		switch typ {
		case typeI32:
			out = append(out, 0x41)
			out = appendSleb32(out, int32(uint32(v)))
		case typeI64:
			out = append(out, 0x42)
			out = appendSleb64(out, int64(v))
		case typeF32:
			out = append(out, 0x43)
			out = binary.LittleEndian.AppendUint32(out, uint32(v))
		case typeF64:
			out = append(out, 0x44)
			out = binary.LittleEndian.AppendUint64(out, v)
		}
		out = append(out, 0x0b)
	}
	return out, r.done()
}

// skipConstExpr reads past a constant expression of any type the
// binary format allows in a global's initializer.
func (r *reader) skipConstExpr() {
	for r.err == nil {
		switch op := r.byte("constant expression"); op {
		case 0x0b: // end
			return
		case 0x41: // i32.const
			r.sleb("i32.const", 32)
		case 0x42: // i64.const
			r.sleb("i64.const", 64)
		case 0x43: // f32.const
			r.bytes(4, "f32.const")
		case 0x44: // f64.const
			r.bytes(8, "f64.const")
		case 0x23: // global.get
			r.u32("global index")
		case 0xd0: // ref.null
			r.byte("reference type")
		case 0xd2: // ref.func
			r.u32("function index")
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
		case 0xfd: // v128.const
			if r.u32("vector opcode") != 12 {
				r.fail("unsupported vector instruction in a constant expression")
			}
			r.bytes(16, "v128.const")
		default:
			r.fail("unsupported instruction %#x in a constant expression", op)
		}
	}
}

// replaceSection swaps the body of secs' section s.id, or inserts s.
func replaceSection(secs []section, s section) []section {
	for i := range secs {
		if secs[i].id == s.id {
			secs[i].body = s.body
			return secs
		}
	}
	return insertSection(secs, s)
}

func encodeExports(exports []export) []byte {
	body := binary.AppendUvarint(nil, uint64(len(exports)))
	for _, e := range exports {
		body = appendName(body, e.name)
		body = append(body, e.kind)
		body = binary.AppendUvarint(body, uint64(e.index))
	}
	return body
}

func appendSleb64(b []byte, x int64) []byte {
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
