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
// A room woken from hibernation names the clients it kept in
// [stateroom.InitEvent.Clients]; a module that exports the ABI's optional
// stateroom_member (the Go SDK does) is told of each before its Init
// (members.go), and any other gets Init alone.
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
//
// # Memory
//
// On Linux the host maps each instance's linear memory itself rather than
// leaving it to wazero's Go slices (memory.go). Each instance reserves
// [Options.MemoryLimit] of address space, which costs RAM only page by page
// as the guest touches it, so memory.grow never copies; a room whose
// instance ends (the room ends, hibernates or faults) unmaps it, and the
// memory is back with the operating system at once. The module's data
// segments are taken out of the binary at load and laid out once as the
// initial memory, which every instance maps copy-on-write (an image of
// fewer than 16 non-zero 4 KiB pages is copied instead, which costs less):
// an instance pays for the pages it writes, not for the module's data. A
// module whose data segments are passive or placed by an imported global
// keeps them, and wazero copies them as before.
//
// The bound: an instance's memory is one mapping of MemoryLimit bytes and
// the guest can address nothing else, so its resident pages never exceed
// MemoryLimit, growth included. Beside it a room holds a fixed amount on
// the Go heap (wazero's instance, its tables and globals, the host's
// bookkeeping): about 25 KiB for a small module, about 190 KiB for a Go
// guest with two thousand functions, whatever its memory does. Pages of
// the shared image that many instances read are in RAM once, though
// VmRSS counts them again in each instance (Pss in /proc/PID/smaps_rollup
// does not). When the operating system refuses a reservation (a strict
// overcommit policy, ulimit -v, vm.max_map_count: each instance takes two
// mappings), [Module.NewService] returns an error wrapping [ErrMemory] and
// the room is not created; [Options.HeapMemory] goes back to wazero's
// memory. A guest whose memory.grow fails at the limit usually traps, and
// its room ends with "wasm memory limit reached", as on every platform.
// Other platforms use wazero's memory: it grows by copying, and what it
// frees returns to the operating system only as the Go heap does.
package wasmhost
