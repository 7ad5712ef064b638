package wasmpatch

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestExportGlobals: every mutable global is exported under the prefix and
// its index, after the imported globals in the index space; a module
// without one comes back as it is; exporting twice under the same prefix is
// refused, not a module with two exports of one name.
func TestExportGlobals(t *testing.T) {
	in := readFile(t, "reactor.wasm")
	out, globals, err := ExportGlobals(in, "p:")
	if err != nil {
		t.Fatal(err)
	}
	want := []MutableGlobal{{Index: 1, Type: typeI32, Export: "p:1"}, {Index: 2, Type: typeI64, Export: "p:2"}}
	if !slices.Equal(globals, want) {
		t.Errorf("globals %+v, want %+v", globals, want)
	}
	var exports []export
	for _, s := range mustSections(t, out) {
		if s.id == secExport {
			if exports, err = parseExports(s.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range want {
		if !slices.Contains(exports, export{name: g.Export, kind: kindGlobal, index: g.Index}) {
			t.Errorf("no export %q of global %d in %+v", g.Export, g.Index, exports)
		}
	}
	if !slices.ContainsFunc(exports, func(e export) bool { return e.name == "_initialize" && e.kind == kindFunc }) {
		t.Error("the module's own exports were lost")
	}
	if _, _, err := ExportGlobals(out, "p:"); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), `"p:1"`) {
		t.Errorf("exporting twice: %v, want ErrMalformed naming p:1", err)
	}

	none := readFile(t, "noglobals.wasm")
	if out, globals, err := ExportGlobals(none, "p:"); err != nil || len(globals) != 0 || &out[0] != &none[0] {
		t.Errorf("a module without mutable globals: %d globals, %v; want it returned as it is", len(globals), err)
	}
	if _, _, err := ExportGlobals([]byte("\x00asm\x02\x00\x00\x00"), "p:"); !errors.Is(err, ErrNotWasm) {
		t.Errorf("version 2: %v, want ErrNotWasm", err)
	}
}

// TestCheckNumeric: a mutable v128 global is exported (a runtime may read
// it), but neither Freeze nor a raw snapshot can save it, and the error
// names it.
func TestCheckNumeric(t *testing.T) {
	// (module (global (mut v128) (v128.const i64x2 0 0))), by hand: wabt
	// needs a flag for it.
	global := append([]byte{1, 0x7b, 1, 0xfd, 12}, make([]byte, 16)...)
	global = append(global, 0x0b)
	module := append([]byte("\x00asm\x01\x00\x00\x00"), secGlobal, byte(len(global)))
	module = append(module, global...)
	_, globals, err := ExportGlobals(module, "p:")
	if err != nil || len(globals) != 1 || globals[0].Type != 0x7b {
		t.Fatalf("ExportGlobals: %+v, %v; want the v128 global", globals, err)
	}
	if err := CheckNumeric(globals); err == nil || !strings.Contains(err.Error(), "global 0 is of type v128") {
		t.Errorf("CheckNumeric: %v, want an error naming global 0 and v128", err)
	}
	if err := CheckNumeric([]MutableGlobal{{Type: typeI32}, {Type: typeI64}, {Type: typeF32}, {Type: typeF64}}); err != nil {
		t.Errorf("numbers refused: %v", err)
	}
}

// FuzzExportGlobals: no input makes ExportGlobals panic; its errors wrap
// ErrMalformed or ErrNotWasm; what it returns parses, exports each global
// it lists, and is the input itself when it lists none.
//
// Run: go test -fuzz=FuzzExportGlobals ./internal/wasmpatch
func FuzzExportGlobals(f *testing.F) {
	for _, b := range testModules(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, globals, err := ExportGlobals(in, "g")
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotWasm) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrNotWasm", err)
			}
			return
		}
		if len(globals) == 0 {
			if !bytes.Equal(out, in) {
				t.Fatal("no globals, yet the module changed")
			}
			return
		}
		secs, err := parseSections(out)
		if err != nil {
			t.Fatalf("the output does not parse: %v", err)
		}
		var exports []export
		for _, s := range secs {
			if s.id == secExport {
				if exports, err = parseExports(s.body); err != nil {
					t.Fatalf("the output's exports do not parse: %v", err)
				}
			}
		}
		for _, g := range globals {
			if !slices.Contains(exports, export{name: g.Export, kind: kindGlobal, index: g.Index}) {
				t.Fatalf("global %d is not exported as %q", g.Index, g.Export)
			}
		}
	})
}
