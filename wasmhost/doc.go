// Package wasmhost runs Stateroom services compiled to WebAssembly.
//
// A [Module] is one compiled guest: [Load] or [Compile] validates it once
// (exports, imports, ABI version) and compiles it with wazero's compiler;
// [Module.NewService] then instantiates one sandboxed instance per room. A
// *Module is a [stateroom.Factory], so it plugs straight into the server:
//
//	mod, err := wasmhost.Load(ctx, "service.wasm", wasmhost.Options{})
//	if err != nil { ... }
//	defer mod.Close(ctx)
//	srv, err := server.New(mod, server.Options{})
//
// Guests speak the Stateroom ABI, version 1, protocol 0 (see internal/abi):
// modules built for upstream Stateroom (Rust) run unchanged, and so do
// modules from the Go guest SDK (a GOOS=wasip1 -buildmode=c-shared reactor).
//
// The host delivers an event as the ABI describes (stateroom_malloc, write,
// stateroom_recv, stateroom_free) with one difference a guest cannot see: a
// room keeps its event buffer (up to 16 KiB) from one event to the next and
// frees it only to replace it with a bigger one, so most events are a
// single call into the guest, which matters under the CPU budget (a
// watcher goroutine per call). Larger events get a buffer of their own,
// freed after stateroom_recv. The room id is written at start as upstream
// does: malloc, write, free.
//
// # Sandbox
//
// Every call into a guest runs under a CPU budget ([Options.EventBudget]) and
// every instance under a memory cap ([Options.MemoryLimit]). The guest sees
// WASI preview 1 with real clocks, real randomness, empty arguments and
// environment, no files and no network; what it writes to stdout and stderr
// goes to [Options.Logger] line by line, tagged with the room id.
//
// A fault (a trap, a guest panic, proc_exit, an exceeded budget or memory
// cap, a malformed stateroom_send) closes the room's instance and panics out
// of the service callback with a *[stateroom.Fault]; the server closes the
// room's clients with [stateroom.CloseServiceFault] and the next connection
// gets a fresh instance.
package wasmhost
