package stateroom

// Optional capabilities of a service. The runtime checks for each with a
// type assertion on the service a [Factory] returned; a service that has
// none runs as well.
//
//   - io.Closer: Close is called once when the room ends, even after the
//     service panicked, to release what the service holds (a WebAssembly
//     instance, a file). Its error is logged.
//   - [MemoryReporter]: the memory the room holds, for the admin API and
//     server.Server.Rooms.
//   - [Snapshotter]: the service's state as bytes and back, so that its
//     room outlives the process (saved to the server's store, restored by
//     the next instance of the room) and can hibernate.

// MemoryReporter is implemented by a service that can tell how much memory
// its room holds (a WebAssembly instance: its linear memory). The runtime
// calls it between events, never concurrently with the service's
// callbacks.
type MemoryReporter interface {
	// MemoryBytes returns the bytes the room's service holds.
	MemoryBytes() int64
}

// Snapshotter is implemented by a service whose state can be saved and
// restored, which makes its room durable: the runtime saves a snapshot
// after events (at most once per checkpoint interval), when the room ends
// or hibernates and when the server shuts down, and a later instance of
// the room (after a restart, a deploy or hibernation) gets Restore before
// its Init, whose [InitEvent.Restored] is then true.
//
// The runtime calls both between events, never concurrently with the
// service's callbacks. A snapshot should hold what the service needs to go
// on, not its clients: after a restart they reconnect and get Connect
// again, and after hibernation Init names those still connected
// ([InitEvent.Clients]).
type Snapshotter interface {
	// Snapshot returns the service's state. The runtime holds the slice
	// until it is stored: return a fresh slice, not a buffer the service
	// reuses. An error skips this save (logged); the room goes on.
	Snapshot() ([]byte, error)
	// Restore sets the service's state from a snapshot an earlier instance
	// took, on a fresh instance from the factory, before Init. An error
	// (or a panic) sets the snapshot aside in the store, logged with the
	// room id, and the room starts fresh from another instance.
	Restore(snapshot []byte) error
}
