// Package gobuildtest gives tests WebAssembly builds of Go service packages:
// each package is built with internal/gobuild once per test binary (a build
// takes seconds) and loaded with package wasmhost, so a test runs the same
// service natively and as a module through the real server.
package gobuildtest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stateroom-go/stateroom/internal/gobuild"
	"github.com/stateroom-go/stateroom/wasmhost"
)

type build struct {
	once   sync.Once
	module []byte
	err    error
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

// Module returns the module built from the package main in dir, building it
// on the first call for that dir in this process. The build happens in the
// first caller's temporary directory; the bytes stay in memory, so nothing
// is left on disk.
func Module(tb testing.TB, dir string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	mu.Lock()
	b := builds[abs]
	if b == nil {
		b = &build{}
		builds[abs] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(tb.TempDir(), filepath.Base(abs)+".wasm")
		if b.err = gobuild.Build(context.Background(), gobuild.Options{Dir: abs, Output: out}); b.err != nil {
			return
		}
		b.module, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		tb.Fatalf("building %s to WebAssembly: %v", dir, b.err)
	}
	return b.module
}

// Factory builds dir (once per process, see [Module]) and compiles it with
// wasmhost under opts. The module is closed when the test ends. wasmhost's
// compilation cache (on by default) makes every compile after the first run
// on a machine cheap.
func Factory(tb testing.TB, dir string, opts wasmhost.Options) *wasmhost.Module {
	tb.Helper()
	m, err := wasmhost.Compile(context.Background(), Module(tb, dir), opts)
	if err != nil {
		tb.Fatalf("loading %s: %v", dir, err)
	}
	tb.Cleanup(func() { m.Close(context.Background()) })
	return m
}
