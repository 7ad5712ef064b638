package wasmpatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of [Patch], wrapped with details.
var (
	// ErrNotWasm: the input is not a WebAssembly binary module.
	ErrNotWasm = errors.New("wasmpatch: not a WebAssembly module")
	// ErrMalformed: the module's structure is broken (truncated section,
	// bad length, unknown kind).
	ErrMalformed = errors.New("wasmpatch: malformed module")
	// ErrNoGuest: the module does not contain the guest SDK's ABI values,
	// so it was not built from a package that imports package guest.
	ErrNoGuest = errors.New("wasmpatch: module does not use the Stateroom guest SDK")
	// ErrPatched: the module already exports the ABI globals.
	ErrPatched = errors.New("wasmpatch: module already exports STATEROOM_API_VERSION")
)

// Names the patch adds or moves.
const (
	VersionExport  = "STATEROOM_API_VERSION"
	ProtocolExport = "STATEROOM_API_PROTOCOL"
	initExport     = "_initialize"
)

// marker is the byte pattern of package guest's abiValues variable: a
// 16-byte head, the version i32 (1), the protocol i32 (0) and a 4-byte
// tail. It must match the literal in guest/guest.go; TestPatchGoModule builds
// a real guest module and fails if they drift apart.
var marker = []byte{
	'\xff', 's', 't', 'a', 't', 'e', 'r', 'o', 'o', 'm', '-', 'a', 'b', 'i', '\xff', '\x01',
	1, 0, 0, 0,
	0, 0, 0, 0,
	'\xfe', 'e', 'n', 'd',
}

const (
	versionOffset  = 16 // of the version i32 within marker
	protocolOffset = 20
)

// Section ids of the WebAssembly binary format.
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank orders the known sections as the binary format requires
// (the tag section sits between memory and global).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, secMemory: 5, secTag: 6, secGlobal: 7,
	secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13}

// External kinds of imports and exports.
const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
	kindTag    = 4
)

type section struct {
	id   byte
	body []byte
}

// Result describes what [Patch] did.
type Result struct {
	// VersionAddr and ProtocolAddr are the memory addresses the new
	// globals hold.
	VersionAddr, ProtocolAddr uint32
	// StartFunc is the index of the function made the start function
	// (the former _initialize export); -1 if the module had none.
	StartFunc int64
	// DataSegments and MergedSegments count the active data segments
	// before and after merging (see [Patch]); equal when nothing merged.
	DataSegments, MergedSegments int
}

// Patch returns a copy of module with the Stateroom ABI globals exported and
// _initialize made the start function. The input is not modified.
//
// Patch merges data segments only across gaps of at most [FreezeMergeGap]
// zero bytes, which keeps the Go linker's segments (it splits at runs of 8
// zeros or more) and the file small. A runtime that copies every segment
// into every instance spends much of an instantiation on tens of thousands
// of segments; its host merges them once at load with [MergeData] and
// [MaxMergeGap] (package wasmhost does). Merging happens only when every
// segment is active with a constant offset, none overlap, and there is no
// data count section (nothing refers to segments by index).
func Patch(module []byte) ([]byte, Result, error) {
	res := Result{StartFunc: -1}
	secs, err := parseSections(module)
	if err != nil {
		return nil, res, err
	}

	var importedGlobals uint32
	var definedGlobals uint32
	var exports []export
	var global, exportSec, start *section
	var addr uint32
	found := false
	for i := range secs {
		s := &secs[i]
		switch s.id {
		case secImport:
			if importedGlobals, err = countImportedGlobals(s.body); err != nil {
				return nil, res, err
			}
		case secGlobal:
			global = s
			r := reader{b: s.body, what: "global section"}
			definedGlobals = r.u32("global count")
			if r.err != nil {
				return nil, res, r.err
			}
		case secExport:
			exportSec = s
			if exports, err = parseExports(s.body); err != nil {
				return nil, res, err
			}
		case secStart:
			start = s
		case secData:
			if addr, found, err = findMarker(s.body); err != nil {
				return nil, res, err
			}
		}
	}
	if !found {
		return nil, res, fmt.Errorf("%w: its data has no ABI values; build a package main that imports github.com/stateroom-go/stateroom/guest and calls guest.Register in an init function", ErrNoGuest)
	}
	for _, e := range exports {
		if e.name == VersionExport || e.name == ProtocolExport {
			return nil, res, fmt.Errorf("%w: patch the module built by go build, not its patched copy", ErrPatched)
		}
	}
	res.VersionAddr = addr + versionOffset
	res.ProtocolAddr = addr + protocolOffset

	// Globals: append two immutable i32s holding the addresses.
	if uint64(importedGlobals)+uint64(definedGlobals)+2 > 1<<32-1 {
		return nil, res, fmt.Errorf("%w: too many globals", ErrMalformed)
	}
	var gbody []byte
	if global != nil {
		r := reader{b: global.body, what: "global section"}
		r.u32("global count")
		gbody = binary.AppendUvarint(nil, uint64(definedGlobals+2))
		gbody = append(gbody, global.body[r.off:]...)
	} else {
		gbody = binary.AppendUvarint(nil, 2)
	}
	for _, a := range []uint32{res.VersionAddr, res.ProtocolAddr} {
		gbody = append(gbody, 0x7f, 0x00, 0x41) // i32, immutable, i32.const
		gbody = appendSleb32(gbody, int32(a))
		gbody = append(gbody, 0x0b) // end
	}
	versionIdx := importedGlobals + definedGlobals

	// Exports: the two globals; _initialize moves to the start section.
	var kept []export
	for _, e := range exports {
		if e.name == initExport && e.kind == kindFunc {
			res.StartFunc = int64(e.index)
			continue
		}
		kept = append(kept, e)
	}
	if res.StartFunc >= 0 && start != nil {
		// A module with both a start function and _initialize is not
		// what go build makes; leave its initialization alone.
		kept, res.StartFunc = exports, -1
	}
	kept = append(kept,
		export{name: VersionExport, kind: kindGlobal, index: versionIdx},
		export{name: ProtocolExport, kind: kindGlobal, index: versionIdx + 1})
	ebody := binary.AppendUvarint(nil, uint64(len(kept)))
	for _, e := range kept {
		ebody = appendName(ebody, e.name)
		ebody = append(ebody, e.kind)
		ebody = binary.AppendUvarint(ebody, uint64(e.index))
	}

	if global != nil {
		global.body = gbody
	} else {
		secs = insertSection(secs, section{id: secGlobal, body: gbody})
	}
	if exportSec != nil {
		// insertSection may have moved the slice; find it again.
		for i := range secs {
			if secs[i].id == secExport {
				secs[i].body = ebody
			}
		}
	} else {
		secs = insertSection(secs, section{id: secExport, body: ebody})
	}
	if res.StartFunc >= 0 {
		secs = insertSection(secs, section{id: secStart, body: binary.AppendUvarint(nil, uint64(res.StartFunc))})
	}
	res.DataSegments, res.MergedSegments = mergeData(secs, FreezeMergeGap, maxMergeGrowth)

	out := make([]byte, 0, len(module)+64)
	out = append(out, module[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out, res, nil
}

// parseSections splits a module into its sections, checking the header and
// every section length. Bodies alias module.
func parseSections(module []byte) ([]section, error) {
	if len(module) < 8 || !bytes.Equal(module[:4], []byte("\x00asm")) {
		head := module[:min(len(module), 8)]
		return nil, fmt.Errorf("%w: it starts with % x, a module starts with 00 61 73 6d (\"\\0asm\")", ErrNotWasm, head)
	}
	if v := binary.LittleEndian.Uint32(module[4:8]); v != 1 {
		return nil, fmt.Errorf("%w: binary format version %d, want 1", ErrNotWasm, v)
	}
	r := reader{b: module, off: 8, what: "module"}
	var secs []section
	lastRank := 0
	for r.off < len(r.b) && r.err == nil {
		at := r.off
		id := r.byte("section id")
		size := r.u32("section size")
		body := r.bytes(int(size), "section body")
		if r.err != nil {
			break
		}
		if id != secCustom {
			rank, ok := sectionRank[id]
			if !ok {
				return nil, fmt.Errorf("%w: unknown section id %d at offset %d", ErrMalformed, id, at)
			}
			if rank <= lastRank {
				return nil, fmt.Errorf("%w: section id %d at offset %d is out of order or repeated", ErrMalformed, id, at)
			}
			lastRank = rank
		}
		secs = append(secs, section{id: id, body: body})
	}
	return secs, r.err
}

// insertSection puts s before the first known section that must follow it.
func insertSection(secs []section, s section) []section {
	rank := sectionRank[s.id]
	for i, t := range secs {
		if t.id != secCustom && sectionRank[t.id] > rank {
			return append(secs[:i], append([]section{s}, secs[i:]...)...)
		}
	}
	return append(secs, s)
}

type export struct {
	name  string
	kind  byte
	index uint32
}

func parseExports(body []byte) ([]export, error) {
	r := reader{b: body, what: "export section"}
	n := r.u32("export count")
	var out []export
	for i := uint32(0); i < n && r.err == nil; i++ {
		e := export{name: r.name("export name"), kind: r.byte("export kind"), index: r.u32("export index")}
		if r.err == nil && e.kind > kindTag {
			r.fail("export %q has unknown kind %d", e.name, e.kind)
		}
		out = append(out, e)
	}
	return out, r.done()
}

func countImportedGlobals(body []byte) (uint32, error) {
	r := reader{b: body, what: "import section"}
	n := r.u32("import count")
	var globals uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name("import module")
		r.name("import name")
		switch kind := r.byte("import kind"); kind {
		case kindFunc:
			r.u32("type index")
		case kindTable:
			r.byte("table type")
			r.limits()
		case kindMemory:
			r.limits()
		case kindGlobal:
			r.byte("global type")
			r.byte("global mutability")
			globals++
		case kindTag:
			r.byte("tag attribute")
			r.u32("tag type index")
		default:
			if r.err == nil {
				r.fail("import kind %d", kind)
			}
		}
	}
	return globals, r.done()
}

// findMarker scans the active data segments for the guest's ABI values and
// returns the memory address of the marker's first byte.
func findMarker(body []byte) (addr uint32, found bool, err error) {
	r := reader{b: body, what: "data section"}
	n := r.u32("segment count")
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32("segment flags")
		var offset int64 = -1 // unknown: passive, or not an i32.const
		switch flags {
		case 0, 2:
			if flags == 2 {
				r.u32("memory index")
			}
			offset = r.constExpr()
		case 1:
		default:
			if r.err == nil {
				r.fail("data segment %d has flags %d", i, flags)
			}
		}
		data := r.bytes(int(r.u32("segment size")), "segment data")
		if r.err != nil {
			break
		}
		for from := 0; ; {
			j := bytes.Index(data[from:], marker)
			if j < 0 {
				break
			}
			at := int64(from+j) + offset
			if offset < 0 {
				return 0, false, fmt.Errorf("%w: the ABI values are in data segment %d, whose address is not a constant", ErrMalformed, i)
			}
			if found || at+int64(len(marker)) > 1<<32 {
				return 0, false, fmt.Errorf("%w: the ABI values appear more than once (segment %d); build with the guest package as is", ErrMalformed, i)
			}
			addr, found = uint32(at), true
			from += j + 1
		}
	}
	return addr, found, r.done()
}

func appendName(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendSleb32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
