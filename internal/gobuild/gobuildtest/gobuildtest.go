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

type buildKey struct{ dir, ldflags string }

var (
	mu     sync.Mutex
	builds = map[buildKey]*build{}
)

// Module returns the module built from the package main in dir with the
// given linker flags (see gobuild.Options.LDFlags; usually ""), building it
// on the first call for that pair in this process. The build happens in the
// first caller's temporary directory; the bytes stay in memory, so nothing
// is left on disk.
func Module(tb testing.TB, dir, ldflags string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	key := buildKey{abs, ldflags}
	mu.Lock()
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(tb.TempDir(), filepath.Base(abs)+".wasm")
		if b.err = gobuild.Build(context.Background(), gobuild.Options{Dir: abs, Output: out, LDFlags: ldflags}); b.err != nil {
			return
		}
		b.module, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		tb.Fatalf("building %s to WebAssembly: %v", dir, b.err)
	}
	return b.module
}

// Factory compiles a module with wasmhost under opts; it is closed when the
// test ends. wasmhost's compilation cache (on by default) makes every
// compile of the same module after the first on a machine cheap.
func Factory(tb testing.TB, module []byte, opts wasmhost.Options) *wasmhost.Module {
	tb.Helper()
	m, err := wasmhost.Compile(context.Background(), module, opts)
	if err != nil {
		tb.Fatalf("loading the module: %v", err)
	}
	tb.Cleanup(func() { m.Close(context.Background()) })
	return m
}
