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

// MemoryReporter is implemented by a service that can tell how much memory
// its room holds (a WebAssembly instance: its linear memory). The runtime
// calls it between events, never concurrently with the service's
// callbacks.
type MemoryReporter interface {
	// MemoryBytes returns the bytes the room's service holds.
	MemoryBytes() int64
}
