package wasmhost

//go:generate sh testdata/build.sh

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuestsUpToDate re-assembles every WAT test guest and checks that the
// committed .wasm is what wat2wasm makes of it, so a source edited without
// running testdata/build.sh fails here.
func TestGuestsUpToDate(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Fatal("wat2wasm is not on PATH: install wabt (apt-get install wabt), which CI does")
	}
	wats, err := filepath.Glob(filepath.Join("testdata", "*.wat"))
	if err != nil || len(wats) == 0 {
		t.Fatalf("no WAT guests in testdata (%v)", err)
	}
	dir := t.TempDir()
	for _, wat := range wats {
		committed := strings.TrimSuffix(wat, ".wat") + ".wasm"
		fresh := filepath.Join(dir, filepath.Base(committed))
		if out, err := exec.Command("wat2wasm", wat, "-o", fresh).CombinedOutput(); err != nil {
			t.Errorf("wat2wasm %s: %v\n%s", wat, err, out)
			continue
		}
		want, err := os.ReadFile(fresh)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(committed)
		if err != nil {
			t.Errorf("%s has no committed %s: run testdata/build.sh", wat, committed)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date with %s: run testdata/build.sh (go generate ./wasmhost)", committed, wat)
		}
	}
}
