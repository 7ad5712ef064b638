//go:build !wasip1

package main

import (
	"context"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/preinit"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestRandomnessWasm runs the transcript against this package built to
// WebAssembly and served through wasmhost: random numbers there come from
// the host's WASI random_get.
func TestRandomnessWasm(t *testing.T) {
	testRandomness(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{}))
}

// TestRandomnessWasmPreinit runs the transcript against the module as
// `stateroom build` writes it, pre-initialised: the runtime generator
// behind math/rand/v2 was seeded at build time, and every room must still
// draw its own numbers.
func TestRandomnessWasmPreinit(t *testing.T) {
	// A generous timeout: under the race detector on a busy machine the
	// build-time start-up runs a hundred times slower than its ~0.1 s.
	module, res, err := preinit.Run(context.Background(), gobuildtest.Module(t, ".", ""), preinit.Options{Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reseeded == 0 {
		t.Fatal("nothing to reseed: the module was not pre-initialised as stateroom build does it")
	}
	testRandomness(t, gobuildtest.Factory(t, module, wasmhost.Options{}))
}
