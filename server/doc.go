// Package server runs Stateroom rooms over WebSocket.
//
// # API
//
//   - [New] builds a [Server] from a stateroom.Factory and [Options]; a
//     Server is an http.Handler (mount it anywhere, with http.StripPrefix
//     under a prefix).
//
//   - [Serve] and [ListenAndServe] run one until a context is done.
//
//   - [Server.Shutdown] stops it gracefully; [Server.SwapFactory] replaces
//     the service (development rebuilds); [Server.CloseRoom] ends one room;
//     [Server.Rooms] lists the running rooms.
//
//   - [ServeTLS] and [ListenAndServeTLS] do the same over TLS.
//
// Routes, relative to where the handler is mounted: GET /ws/{room} (the id
// percent-decoded), GET /ws (Options.DefaultRoom), GET /stateroom.js (the
// browser client, an ES module) and /stateroom.css (the pages'
// stylesheet), GET /status ("ok"),
// GET /metrics (Prometheus; Options.MetricsPath, DisableMetrics), /admin/
// (only with Options.AdminToken: GET /admin/rooms lists the rooms as JSON,
// POST /admin/rooms/{room}/close ends one with stateroom.CloseRoomClosed),
// /client/ (Options.ClientDir) and / (Options.StaticDir or Options.StaticFS)
// when set. The static routes serve files and directories' index.html
// only: no listings, no dotfiles, no symlink out of the root (static.go).
// With Options.AllowedHosts, a request for another Host gets 421 on every
// route but /status (DNS rebinding).
//
// # Admission
//
// A WebSocket request passes these checks in order, each refusal an HTTP
// error with a message naming the option: the Host header
// (Options.AllowedHosts; 421), the Origin header (Options.AllowedOrigins,
// or the same origin, scheme included; 403), Options.ClientToken and
// Options.Authenticate (401, or 403 for ErrForbidden), shutdown (503),
// Options.MaxConnections (503), MaxConnectionsPerIP (429), all with
// Retry-After, then the room: Options.MaxRooms (503) and, for a
// connection that creates its room, MaxRoomsCreatedPerIP (429 with
// Retry-After), then the factory (403 for ErrRoomRefused, 500). Messages
// name the option, or what Options.OptionNames calls it. A full
// room (Options.MaxClientsPerRoom) is the one refusal after the upgrade:
// the client gets close code 1013 and "room is full", which a browser can
// read.
//
// Once connected, a client is held to Options.MessageRate, pings and
// pongs included: by default it is throttled (the server reads its
// socket no faster than the rate, so TCP flow control slows the client
// down and nothing is lost), or with Options.MessageRateAction CloseClient
// closed with 1008. A message is at most Options.MaxMessageSize bytes in
// at most Options.MaxMessageFragments frames (1009 otherwise).
//
// # Metrics
//
// The Prometheus metrics (namespace "stateroom") count rooms (running,
// created, closed by reason), clients, messages and bytes in and out (out
// once per recipient), deliveries dropped by reason, slow-consumer,
// heartbeat and rate-limit disconnects, throttle episodes, close codes sent
// (the server's own codes by number, the codes clients and services choose
// bucketed, so no client can add series), service faults by kind, and
// refused requests by reason. The message path only does atomic adds on
// metrics resolved when the server is built.
//
// # Rooms
//
// A room is created by the first connection to its id: the factory builds
// its service and Init runs before any Connect. It ends when its last
// client has been gone for Options.RoomGracePeriod, and a later connection
// gets a fresh service. Client ids count from 1 per room; a client that
// connects with ?token=T gets the same id as the last connection with that
// token in the room's lifetime, and a still-connected holder of that id is
// closed with stateroom.CloseReplaced (its Disconnect comes first).
//
// A client is a member of its room from its Connect, which runs right after
// the WebSocket handshake completes: a message the room broadcasts between
// the client seeing the handshake answer and its Connect does not reach it.
// A client that must see every message waits for a first message from the
// service (the examples send one on Connect) or for its own first message
// to come back.
//
// # Shutdown
//
// [Server.Shutdown] refuses new connections (503), ends every room with
// stateroom.CloseGoingAway (rooms in parallel, so a service stuck in a
// callback delays no other room) and waits for the server's goroutines.
// When its context ends first it returns the context's error at once: the
// clients of a room that could not be reached get 1001 directly. [Serve]
// closes the rooms before it waits for net/http's own connections, so
// clients hear 1001 at once, not after idle keep-alive sockets time out.
//
// # Internals
//
// The room runtime (rooms, timers, membership, the call into the service)
// is package internal/rooms; this package is the WebSocket transport. A
// connection (conn) is the rooms.Member of its client: the room queues
// frames into it and closes it. The connection holds only a rooms.Handle,
// its place in the room, from a rooms.Placement (today the local
// rooms.Registry), so a room on another node or a hibernated one can stand
// behind the same handle.
//
// Every call into a room's service happens with that room's mutex held, so
// a room's events are serial and rooms run in parallel (see
// internal/rooms). Room.Send never touches a socket: it builds the frame
// once and appends the same bytes to each recipient's queue, bounded in
// bytes (Options.SendQueueBytes). A client is closed as a slow consumer
// (stateroom.CloseSlowConsumer) by what it fails to take, not by how many
// messages it is sent: when its queue outgrows that bound, or when it
// accepts no bytes for Options.WriteTimeout.
// No lock is held during socket I/O.
//
// # Goroutines
//
// Every goroutine the server starts goes through one owner
// (internal/routines): top-level work (a WebSocket handler, a room, the
// heartbeat sweeper, a memory release) is refused once Shutdown has begun;
// the goroutines of a connection or room that is already counted (its
// reader, writer, timers) are counted too and never refused, so a
// connection being closed at shutdown still writes its close frame. The
// exceptions, each owned and waited for by its starter: the poller's
// goroutine (stopped after the last counted one), the owner's own waiter,
// and Serve's http.Server goroutine.
//
// Per connection, while it is idle: no goroutine at all on Linux, and no
// buffers beyond a 128-byte array (the read buffer and the message buffer
// are pooled and borrowed only while bytes flow). A reader whose client
// has gone quiet (every byte read, at a message boundary) waits in an
// ordinary read under a 100 ms read deadline of its own; when it passes,
// the reader parks the connection with the server's poller, an epoll
// instance of its own that watches the socket for one readiness event, and
// ends. The poller starts a fresh reader when bytes or a hangup arrive, and
// whoever closes a parked connection starts one too, for the close
// handshake's read deadline to apply (park.go). Clients that talk, and
// short-lived connections, so never pay for parking. A connection that
// cannot park (TLS, whose socket readiness says nothing about decrypted
// bytes; other systems) keeps one reader goroutine, handed over to a fresh
// one whenever the client goes quiet, because the service runs on the
// reader and can grow its stack, and a waiting goroutine keeps its stack.
// The HTTP handler that upgraded a connection has returned, so nothing of
// net/http's request state stays. A writer goroutine runs only while frames
// are queued: the first frame queued starts one (under conn.mu), it writes
// everything queued with one writev per 64 KiB and ends when the queue is
// empty. The reader writes the last close frame itself. A reader throttled
// to its client's rate waits on a timer and keeps its goroutine and
// buffers meanwhile: that client is sending, not idle. Per server: one
// heartbeat sweeper, started with the first connection, and the poller's
// goroutine, started with the first connection that can park. Per armed
// timer: the time.AfterFunc callback while it runs. After a mass close,
// or once rooms dropped enough instances (hibernated or ended, memory.go),
// one goroutine hands freed memory back (Options.KeepFreedMemory).
//
// # Lock order
//
// A room's mutex, then the registry's (internal/rooms); a room's mutex,
// then conn.mu (a room sends to and closes its members); the connection
// table's mutex (connTable.mu), then conn.mu; the registry's mutex, then
// the table's (a join that creates a room is charged to its address under
// the registry's lock, JoinRequest.Creating); a room's mutex, then the
// table's (a room that hibernates or ends is counted for the memory
// release, after it counted the rooms left under the registry's lock alone).
// The table's mutex is never
// held while taking a room's or the registry's, and conn.mu is a leaf. poller.mu and the
// owner's mutex are leaves. The admin API and Server.Rooms only TryLock a
// room (to ask a MemoryReporter), so they never wait on one.
package server
