// Package server runs Stateroom rooms over WebSocket.
//
// # API
//
//   - [New] builds a [Server] from a stateroom.Factory and [Options]; a
//     Server is an http.Handler (mount it anywhere, with http.StripPrefix
//     under a prefix).
//   - [Serve] and [ListenAndServe] run one until a context is done.
//   - [Server.Shutdown] stops it gracefully; [Server.SwapFactory] replaces
//     the service (development rebuilds); [Server.CloseRoom] ends one room;
//     [Server.Rooms] lists the running rooms.
//
// Routes, relative to where the handler is mounted: GET /ws/{room} (the id
// percent-decoded), GET /ws (Options.DefaultRoom), GET /status ("ok"),
// /client/ (Options.ClientDir) and / (Options.StaticDir) when set.
//
// A room is created by the first connection to its id: the factory builds
// its service and Init runs before any Connect. It ends when its last
// client has been gone for Options.RoomGracePeriod, and a later connection
// gets a fresh service. Client ids count from 1 per room; a client that
// connects with ?token=T gets the same id as the last connection with that
// token in the room's lifetime, and a still-connected holder of that id is
// closed with stateroom.CloseReplaced (its Disconnect comes first).
//
// # Concurrency
//
// Every call into a room's service happens with that room's mutex held, so
// a room's events are serial and rooms run in parallel. The callers are the
// goroutines the events come from: a connection's reader (Connect, Message,
// Disconnect), the room's timer and grace timer (time.AfterFunc), and
// whoever ends a room (CloseRoom, SwapFactory, Shutdown, the heartbeat
// sweeper). There is no goroutine per room. Events a room causes while
// locked (a slow client closed during Send, a zero-delay timer) are queued
// and run right after the current callback, under the same lock.
//
// Room.Send never touches a socket: it builds the frame once and appends the
// same bytes to each recipient's bounded queue. A client whose queue is full
// is closed with stateroom.CloseSlowConsumer. No lock is held during socket
// I/O.
//
// # Goroutines
//
// Per connection: the HTTP handler goroutine becomes the reader, plus one
// writer goroutine that writes the queue with one writev per wake-up. Per
// server: one heartbeat sweeper, started with the first connection. Per
// armed timer: the time.AfterFunc callback while it runs. Shutdown waits
// for all of them (Server.wg).
//
// # Lock order
//
// room.mu, then registry.mu; room.mu, then conn.mu; Server.mu, then
// conn.mu. Server.mu and registry.mu are never held while taking a room's
// mutex, and conn.mu is a leaf.
package server
