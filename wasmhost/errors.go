package wasmhost

import "errors"

// Errors of Load and Compile, each wrapped with what was found and how to fix
// it. Test for them with errors.Is.
var (
	// ErrNotWasm: the input is neither a WebAssembly binary nor WebAssembly
	// text.
	ErrNotWasm = errors.New("wasmhost: not a WebAssembly module")
	// ErrWAT: the input is WebAssembly text and could not be converted
	// (wat2wasm is missing or rejected it).
	ErrWAT = errors.New("wasmhost: cannot convert WebAssembly text")
	// ErrInvalid: the binary does not decode or validate as WebAssembly.
	ErrInvalid = errors.New("wasmhost: invalid WebAssembly module")
	// ErrExport: an export the ABI requires is missing or has the wrong
	// type.
	ErrExport = errors.New("wasmhost: module does not export what the Stateroom ABI needs")
	// ErrImport: the module imports something the host does not provide.
	ErrImport = errors.New("wasmhost: module imports what the host does not provide")
	// ErrVersion: the module declares an ABI version or protocol other
	// than 1 and 0, or declares none.
	ErrVersion = errors.New("wasmhost: unsupported Stateroom ABI version")
	// ErrOptions: a field of Options is out of range.
	ErrOptions = errors.New("wasmhost: invalid options")
	// ErrClosed: the Module was closed.
	ErrClosed = errors.New("wasmhost: module closed")
)

// Errors a faulting instance reports as the Err of its *stateroom.Fault.
var (
	// ErrBudget: one call into the guest ran past Options.EventBudget.
	ErrBudget = errors.New("wasmhost: event budget exceeded")
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, a
	// failed allocation after memory.grow hit the cap, a panic).
	ErrTrap = errors.New("wasmhost: guest trapped")
	// ErrExit: the guest called proc_exit.
	ErrExit = errors.New("wasmhost: guest exited")
	// ErrSend: the guest called stateroom_send with bytes outside its
	// memory or that do not decode as a MessageFromProcess (text that is
	// not valid UTF-8 decodes: the room drops it).
	ErrSend = errors.New("wasmhost: malformed stateroom_send")
	// ErrMalloc: stateroom_malloc returned a pointer that does not fit the
	// requested size in the guest's memory.
	ErrMalloc = errors.New("wasmhost: stateroom_malloc returned an unusable pointer")
	// ErrMemory: the operating system refused the memory of a new
	// instance (the address space of Options.MemoryLimit, or the mapping
	// of the module's memory image; see Options.HeapMemory). NewService
	// returns it and the room is not created; running rooms are not
	// affected.
	ErrMemory = errors.New("wasmhost: wasm memory limit reached")
)

// Errors of the service's Snapshot and Restore (stateroom.Snapshotter),
// each wrapped with the cause and what to do.
var (
	// ErrSnapshot: the instance could not be snapshotted (the guest's
	// stateroom_snapshot failed, trapped or returned an address outside
	// its memory; a raw snapshot is unavailable for the module). The
	// runtime skips this save; a trap also faults the room at its next
	// event.
	ErrSnapshot = errors.New("wasmhost: cannot snapshot the instance")
	// ErrRestore: a snapshot could not be restored (damaged or
	// truncated bytes, more memory than Options.MemoryLimit allows, the
	// guest's stateroom_restore refused it or trapped). When the snapshot
	// is sound but from another build, the error wraps
	// stateroom.ErrIncompatibleSnapshot as well.
	ErrRestore = errors.New("wasmhost: cannot restore the snapshot")
)
