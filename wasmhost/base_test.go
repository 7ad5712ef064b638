package wasmhost_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestBaseSameInEveryProcess: the base image raw snapshots are taken
// against is the same in every process that loads the module, even for a
// guest whose _initialize draws entropy and reads clocks (a Go guest's
// runtime seeds itself there), so a raw snapshot restores the same bytes
// after a restart: pages the room left as the base, and chunks stored as
// their difference from it, depend on it. Two Loads stand for two
// processes.
func TestBaseSameInEveryProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "randomness.wasm")
	if err := os.WriteFile(path, gobuildtest.Module(t, "../examples/randomness", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := wasmhost.Options{CacheDir: t.TempDir()} // the second Load compiles from the cache
	load := func() [][]byte {
		m, err := wasmhost.Load(context.Background(), path, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		base, rawErr := wasmhost.BasePages(m)
		if rawErr != nil {
			t.Fatalf("raw snapshots unavailable for the Go guest: %v", rawErr)
		}
		return base
	}
	a, b := load(), load()
	if len(a) != len(b) {
		t.Fatalf("bases of %d and %d pages", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("page %d of the base differs between two loads of the module: a raw snapshot would restore another process's bytes there", i)
		}
	}
}
