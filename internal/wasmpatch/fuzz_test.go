package wasmpatch_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// FuzzPatch feeds Patch mutations of the modules in testdata/ (plus the
// corpus in testdata/fuzz/FuzzPatch). Patch must never panic; when it
// succeeds, patching again must report ErrPatched, and a module that
// validated before must still validate.
//
// Run: go test -fuzz=FuzzPatch ./internal/wasmpatch
func FuzzPatch(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	valid := func(b []byte) bool {
		cm, err := rt.CompileModule(ctx, b)
		if err != nil {
			return false
		}
		cm.Close(ctx)
		return true
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := wasmpatch.Patch(in)
		if err != nil {
			if out != nil {
				t.Errorf("error %v with output", err)
			}
			return
		}
		if _, _, err := wasmpatch.Patch(out); !errors.Is(err, wasmpatch.ErrPatched) {
			t.Errorf("patching the output again: %v, want ErrPatched", err)
		}
		if valid(in) && !valid(out) {
			_, err := rt.CompileModule(ctx, out)
			t.Errorf("a valid module became invalid: %v", err)
		}
	})
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
