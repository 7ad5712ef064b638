//go:build !wasip1

package main

import (
	"testing"

	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestRandomnessWasm runs the transcript against this package built to
// WebAssembly and served through wasmhost: random numbers there come from
// the host's WASI random_get.
func TestRandomnessWasm(t *testing.T) {
	testRandomness(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{}))
}
