// Package rooms is the room runtime: rooms, their timers, their members and
// the call into each room's service, apart from any transport. The server's
// WebSocket transport reaches it through three seams:
//
//   - [Member] is what a connection offers a room: a queue for frames and a
//     way to close it. The transport implements it.
//   - [Placement] finds or creates a room and returns a [Handle], one
//     client's place in it (send a message in, leave, be kicked). [Registry]
//     is the local placement; a cluster's placement returns handles that
//     forward to the node owning the room, and registers members there
//     whose frames travel back. Nothing else changes for the transport.
//   - instance (instance.go) is the running service a room holds, apart
//     from its members and timers, so a room can drop and rebuild it
//     (snapshot, evict, restore) while its clients stay connected.
//
// # Concurrency
//
// Every call into a room's service happens with that room's mutex held, so
// a room's events are serial and rooms run in parallel. The callers are
// the goroutines events come from: the transport's (Connect, Message,
// Leave, Kick), the room's timers (ownedTimer, counted by the owner),
// whoever ends a room (Registry.Close, CloseAll, Shutdown), and the
// registry's wake-ups of dormant rooms (dormant.go), which start a room
// through Join as a client would. There is no goroutine per room. Events a room causes while locked (a client closed
// during Send, a zero-delay timer) are queued and run right after the
// current callback, under the same lock.
//
// # Lock order
//
// Room.mu, then Registry.mu; Room.mu, then whatever a Member locks in its
// methods (which must not block and must not call back into the room);
// Room.mu, then a saver shard's mu (a room queues its snapshot), then
// Registry.mu (a writer looks up rooms). Registry.mu is never held while
// taking either; it is held while JoinRequest.Creating runs, which may
// lock only what the registry never holds under it.
package rooms
