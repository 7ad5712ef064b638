// Package guest runs a [stateroom.Service] inside a WebAssembly module, speaking
// the Stateroom ABI (version 1, protocol 0; see internal/abi/ABI.md) so that
// package wasmhost, or upstream Stateroom's host, can load it.
//
// A service becomes a module with one line in package main, in a file built
// only for wasip1:
//
//	//go:build wasip1
//
//	package main
//
//	import (
//		"github.com/stateroom-go/stateroom"
//		"github.com/stateroom-go/stateroom/guest"
//	)
//
//	func init() { guest.Register(stateroom.New(NewCounter)) }
//
//	func main() {}
//
// and is built as a reactor with `stateroom build` (package internal/gobuild),
// which runs
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
//
// and then patches the module (package internal/wasmpatch): it adds the
// STATEROOM_API_VERSION and STATEROOM_API_PROTOCOL globals that Go cannot
// export, and makes _initialize the module's start function, so the module
// initializes itself at instantiation in any host, upstream's included (which
// never calls _initialize). A plain `go build` of the same package also loads
// in our host, which calls _initialize and falls back to the functions
// stateroom_api_version and stateroom_api_protocol this package exports.
//
// # Pre-initialisation
//
// `stateroom build` (and stateroom dev) go one step further, with package
// internal/preinit: they run the module's start-up (the Go runtime's init,
// every package's init functions, Register) once at build time and write
// the memory and globals it leaves into the module, as Wizer does for Rust
// and C, so instantiating a room's module runs no guest code at all. The
// module has no start function and no _initialize left; it is an ordinary
// module for any host. `stateroom build --no-preinit` leaves start-up to
// every instance. A panic during start-up, or a service registered in main
// instead of init, fails the build with the panic or the fix.
//
// What start-up computed is therefore the same in every room, and some of
// it was computed with the build's inputs rather than the host's:
//
//   - Random generators seeded during start-up are reseeded in every room:
//     at the instance's first call into the module, before any service code
//     runs, this package refills them from the host's WASI random_get (the
//     ranges are found at build time and recorded in a table of this
//     package; see preinit.go). That covers the runtime's generator behind
//     math/rand/v2, the top-level functions of math/rand, select's choices
//     and the seeds of maps made at run time, and any math/rand/v2 ChaCha8
//     a package seeded from randomness in an init function.
//   - Frozen at build time: the runtime's hash key and the hash seeds of
//     maps built during init (their entries are laid out by those seeds;
//     they work as usual, but their seeds are the same in every room and
//     derive from the build's fixed entropy, so do not fill such a map with
//     keys clients choose: make it at run time), and any other value a
//     package drew during init: crypto/rand bytes, a key, a
//     hash/maphash.Seed, a math/rand/v2 PCG. Start-up runs with fixed
//     entropy so that the same source always builds the same module; such
//     values are the same in every room and every build. Draw secrets in
//     the factory or a callback.
//   - Clocks: start-up runs with a clock that starts at zero. time.Now in
//     an init function reads 1970-01-01 UTC (plus microseconds), and
//     monotonic readings and timers taken then lie at the start of any
//     host's monotonic clock, so they are never ahead of it at run time: a
//     timer set in init has fired by the time a room runs, and time.Since
//     of an init-time reading is positive but measures nothing useful.
//     At run time both clocks are the host's, as before.
//   - Environment and arguments: start-up sees none, and the runtime reads
//     them only then, so os.Getenv and os.Args stay empty at run time even
//     if a host passes some (package wasmhost passes none anyway).
//     Configure a service at build time (-ldflags -X, embedded files) or
//     through its events.
//   - Goroutines started in init are frozen where start-up left them and
//     go on in every room.
//
// # Why Register runs in init
//
// A -buildmode=c-shared wasip1 module is a reactor: its exported
// _initialize starts the Go runtime and runs every package's init functions,
// but never main.main. Register must therefore be called from an init
// function (or a package-level variable's initializer); main stays empty and
// exists only because the build mode requires package main.
//
// # The room id
//
// The ABI does not hand the guest its room id. Upstream's host writes it into
// guest memory once when the room starts, before the first event: it
// allocates a buffer with stateroom_malloc, writes the id's bytes and
// releases it with stateroom_free. This package keeps the bytes of a
// buffer freed before the first event as the room id, passes it to the
// factory and returns it from [stateroom.Room.ID]. A host that does not write
// the id gives the factory the empty string.
//
// # Exports and imports
//
// The module exports stateroom_recv, stateroom_malloc, stateroom_free,
// stateroom_api_version and stateroom_api_protocol, the ABI's optional
// stateroom_snapshot, stateroom_restore and stateroom_member, and imports
// env.stateroom_send. Buffers the host allocates stay reachable (tracked by
// address) until the host frees them.
//
// # Snapshots
//
// A service that implements [stateroom.Snapshotter] is durable as a module
// exactly as it is natively: the same Snapshot and Restore run through the
// ABI's snapshot extension (internal/abi/ABI.md). stateroom_snapshot calls
// Snapshot and hands the host its bytes, which the module keeps until the
// host's next call; stateroom_restore calls Restore, before the Init event,
// whose [stateroom.InitEvent.Restored] this package then sets (the ABI's
// Init carries no such flag). Restore gets the very buffer the host wrote,
// not a copy, and may keep it. A Snapshot error or panic skips that save; a
// Restore error or panic refuses the snapshot (the runtime sets it aside),
// and one that wraps [stateroom.ErrIncompatibleSnapshot] starts the room
// fresh, as natively. Errors and panics are printed to stderr, which the
// host logs with the room id and adds to its error.
//
// A hibernated room wakes on a fresh instance while its clients stay
// connected. The host names each of them through the ABI's members
// extension (stateroom_member, before Init), and this package hands them to
// the service in [stateroom.InitEvent.Clients], as the runtime does for a
// native service.
//
// A service that is not a Snapshotter makes stateroom_snapshot answer that
// it has no snapshot of its own; package wasmhost then saves the instance's
// raw memory, which only the identical module can restore (see wasmhost).
//
// # Events and faults
//
// The service is built by the factory at the first event (Init), or at a
// restore just before it (see Snapshots). Each event
// runs the matching Service method; Room.Send, Room.SetTimer and Room.Close
// call stateroom_send at once. Room.Close uses the ABI's Close extension, a
// Close command (internal/abi/ABI.md): a module whose service never closes a
// client sends only upstream's commands and runs on upstream's host too. A panic in the service, or a factory error, is not
// recovered: the Go runtime prints it and the stack to stderr and aborts with
// a trap, which the host treats as a fault of that room only.
//
// After each event the guest yields to the Go scheduler (runtime.Gosched).
// A wasm guest is single-threaded: without the yield, goroutines the service
// starts (time.AfterFunc callbacks, background work) and the garbage
// collector's background workers would run only when the service itself
// blocks. It costs about 0.4 µs per event.
//
// Inside a service, time.Now and crypto/rand read the host's WASI clock and
// random source.
package guest
