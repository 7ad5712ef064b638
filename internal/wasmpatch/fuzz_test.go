package wasmpatch

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPatch feeds Patch mutations of the modules in testdata/ (plus the
// corpus in testdata/fuzz/FuzzPatch). Patch must never panic; when it
// succeeds, patching again must report ErrPatched, and the memory the data
// segments initialize must be the same before and after merging.
//
// The oracle does not ask wazero whether a module is valid: wazero v1.12.0
// allocates slices for the entry counts a module declares before reading
// the entries (6-13 GB for some 70-byte inputs this fuzzer found, killing
// its worker) and panics on some malformed functions. The inputs that showed
// it are kept in testdata/fuzz/FuzzPatch; the unit tests check real modules
// with wazero.
//
// Run: go test -fuzz=FuzzPatch ./internal/wasmpatch
func FuzzPatch(f *testing.F) {
	for _, b := range testModules(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, res, err := Patch(in)
		if err != nil {
			if out != nil {
				t.Errorf("error %v with output", err)
			}
			return
		}
		if _, _, err := Patch(out); !errors.Is(err, ErrPatched) {
			t.Errorf("patching the output again: %v, want ErrPatched", err)
		}
		if res.MergedSegments != res.DataSegments {
			if a, b := memoryImage(t, in), memoryImage(t, out); !equalImages(a, b) {
				t.Errorf("merging %d segments into %d changed the initial memory", res.DataSegments, res.MergedSegments)
			}
		}
	})
}

// memoryImage applies the active data segments of a module in order and
// returns the non-zero bytes they leave, by address.
func memoryImage(t *testing.T, module []byte) map[uint32]byte {
	secs, err := parseSections(module)
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	img := map[uint32]byte{}
	for _, s := range secs {
		if s.id != secData {
			continue
		}
		segs, ok := activeSegments(s.body)
		if !ok {
			t.Fatal("data segments not all active with constant offsets")
		}
		for _, seg := range segs {
			for i, c := range seg.data {
				if c == 0 {
					delete(img, seg.offset+uint32(i))
				} else {
					img[seg.offset+uint32(i)] = c
				}
			}
		}
	}
	return img
}

func equalImages(a, b map[uint32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestTestdataUpToDate re-assembles each .wat in testdata with wat2wasm and
// checks it equals the committed .wasm, so the two cannot drift apart.
func TestTestdataUpToDate(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wat2wasm not on PATH: CI must install wabt (apt-get install -y wabt)")
		}
		t.Skip("wat2wasm not on PATH; install wabt (apt-get install -y wabt) to run this check")
	}
	wats, _ := filepath.Glob(filepath.Join("testdata", "*.wat"))
	for _, wat := range wats {
		out := filepath.Join(t.TempDir(), "out.wasm")
		if msg, err := exec.Command(wat2wasm, wat, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", wat, err, msg)
		}
		got, _ := os.ReadFile(out)
		want, err := os.ReadFile(strings.TrimSuffix(wat, ".wat") + ".wasm")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s does not match its .wasm (%v): rebuild with the command in its header", wat, err)
		}
	}
}

// testModules returns the modules in testdata/, the fuzz targets' seeds.
func testModules(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no modules in testdata: %v", err)
	}
	mods := make([][]byte, len(paths))
	for i, p := range paths {
		if mods[i], err = os.ReadFile(p); err != nil {
			tb.Fatal(err)
		}
	}
	return mods
}
