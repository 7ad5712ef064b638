package relay

import (
	"testing"

	"go.uber.org/goleak"
)

// The wasm tests run servers and WebAssembly instances: none may outlive
// its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
