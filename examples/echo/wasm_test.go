//go:build !wasip1

package main

import (
	"testing"

	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestEchoWasm plays the native transcripts against this package built
// to WebAssembly and served through wasmhost.
func TestEchoWasm(t *testing.T) {
	testEcho(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{}))
}
