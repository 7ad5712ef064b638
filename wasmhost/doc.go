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
// The host also understands the ABI's Close extension, a command
// (internal/abi/ABI.md), which the Go SDK's Room.Close sends; it calls the
// room's Close. A Close with a code a service may not use is ignored, with a
// warning logged once per room: it harms no client, so it does not end the
// room.
//
// Text a guest sends that is not valid UTF-8 is handed to the room as text,
// and the room drops it with a warning and counts it, as it does for a
// native service; it is not a fault.
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
// # Snapshots
//
// Every room's service is a [stateroom.Snapshotter], so the server's
// durable rooms (a store in its options) work for every module. A module
// that exports the ABI's optional stateroom_snapshot and stateroom_restore
// (internal/abi/ABI.md; the Go SDK does, for a service that implements
// stateroom.Snapshotter) is saved as the bytes its guest gives, which may
// cross rebuilds. Any other module (every upstream Rust module), or a guest
// that says it has no snapshot of its own, is saved as raw memory: the
// pages that differ from the module's memory just after instantiation,
// compressed, and its mutable globals, which the host exports for itself
// when it loads the module. Only the identical module (by sha256) can
// restore raw memory; another refuses it with
// [stateroom.ErrIncompatibleSnapshot], so the room starts fresh after a
// rebuild, and says so in the log once for the room. A restored raw
// instance does not get Init again; if the snapshot came from another
// process, it gets a Disconnect for each client it knew of instead (a
// hibernated room of this process keeps its clients). Damaged or truncated snapshots, and ones larger than
// [Options.MemoryLimit] allows, are refused with [ErrRestore] and never
// reach the guest. The format is in snapshot.go.
//
// # Sandbox
//
// Every call into a guest runs under a CPU budget ([Options.EventBudget]) and
// every instance under a memory cap ([Options.MemoryLimit]). The guest sees
// WASI preview 1 with real clocks, real randomness, empty arguments and
// environment, no files and no network; what it writes to stdout and stderr
// goes to [Options.Logger] line by line, tagged with the room id. The budget
// counts time asleep too: a sleep in WASI (poll_oneoff on a relative clock,
// which time.Sleep compiles to) ends the call when the budget runs out, or
// when the Module is closed, instead of holding the room for its whole
// duration.
//
// A fault (a trap, a guest panic, proc_exit, an exceeded budget or memory
// cap, a stateroom_send that does not decode) closes the room's instance and panics out
// of the service callback with a *[stateroom.Fault]; the server closes the
// room's clients with [stateroom.CloseServiceFault] and the next connection
// gets a fresh instance.
package wasmhost
