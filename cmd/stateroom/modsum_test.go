package main

import (
	"os"
	"path/filepath"
	"testing"
)

// wasmModule assembles a module from sections, each given as its id and
// payload.
func wasmModule(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s[0], byte(len(s)-1)) // payloads here are < 128 bytes
		b = append(b, s[1:]...)
	}
	return b
}

// custom is a custom section named name holding data.
func custom(name, data string) []byte {
	return append([]byte{0, byte(len(name))}, name+data...)
}

// TestModuleSum: modules that differ only in their go:buildid section have
// one sum; any other difference, in code or in another custom section,
// tells them apart; bytes that are not a module are hashed whole.
func TestModuleSum(t *testing.T) {
	typeSec := []byte{1, 1, 0x60, 0, 0} // one type: func() -> ()
	otherType := []byte{1, 1, 0x60, 1, 0x7f, 0}
	base := wasmModule(custom("go:buildid", "aaaa/bbbb"), typeSec)
	for _, tc := range []struct {
		name string
		mod  []byte
		same bool
	}{
		{"another build id", wasmModule(custom("go:buildid", "cccc/dddd/eeee"), typeSec), true},
		{"no build id", wasmModule(typeSec), true},
		{"other code", wasmModule(custom("go:buildid", "aaaa/bbbb"), otherType), false},
		{"another custom section", wasmModule(custom("go:buildid", "aaaa/bbbb"), custom("name", "x"), typeSec), false},
		{"truncated", base[:len(base)-1], false},
		{"not a module", []byte("hello"), false},
	} {
		if got := sumWithoutBuildID(tc.mod) == sumWithoutBuildID(base); got != tc.same {
			t.Errorf("%s: same sum = %v, want %v", tc.name, got, tc.same)
		}
	}
	path := filepath.Join(t.TempDir(), "m.wasm")
	if err := os.WriteFile(path, base, 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, err := moduleSum(path); err != nil || sum != sumWithoutBuildID(base) {
		t.Errorf("moduleSum of the file: %x, %v", sum, err)
	}
	if _, err := moduleSum(filepath.Join(t.TempDir(), "missing.wasm")); err == nil {
		t.Error("moduleSum of a missing file succeeded")
	}
}
