package relay

import _ "embed" // for the guest

//go:generate wat2wasm relay.wat -o relay.wasm

// guest is relay.wasm, assembled from relay.wat. A string, so that no
// caller can change what the next one gets.
//
//go:embed relay.wasm
var guest string

// Wasm returns the relay as a WebAssembly guest of the Stateroom ABI: a
// fresh copy of the module, ready for wasmhost.Compile. It behaves as
// [Service] does, relaying every message verbatim to everyone in the room,
// so that a benchmark of it against the native relay measures what the
// wasm path costs. Its source is relay.wat beside this file.
func Wasm() []byte { return []byte(guest) }
