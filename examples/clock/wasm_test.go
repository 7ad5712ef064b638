//go:build !wasip1

package main

import (
	"testing"

	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestClockWasm plays the native transcripts against this package built to
// WebAssembly (ticking every 200 ms, set at build time) and served through
// wasmhost.
func TestClockWasm(t *testing.T) {
	module := gobuildtest.Module(t, ".", "-X main.period=200ms")
	testClock(t, gobuildtest.Factory(t, module, wasmhost.Options{}))
}
