// Package loadgen is the load engine behind `stateroom bench`: it drives a
// relay server (one that sends every message verbatim to everyone in the
// room, the sender included) over real WebSocket connections and measures
// it.
//
// Three modes, each bounded in count and in time:
//
//   - [Fanout]: Rooms x Clients connections, Senders per room with at most
//     Window messages in flight each. It reports delivered frames per second
//     and the senders' round-trip percentiles, and checks that every client
//     got every message of its room exactly once and in per-sender order;
//     any loss, duplicate or reorder makes it return an error wrapping
//     [ErrDelivery].
//   - [Conns]: idle connections; the server's memory per connection (from
//     /proc/PID/status when Options.ServerPID is set), the setup rate and
//     connect-latency percentiles (to the room's first message when the
//     service sends one on connect, else to the handshake; any service
//     will do, not only a relay).
//   - [Churn]: fresh rooms, each one connect, one round trip and close;
//     rooms per second and connect-to-first-reply latency.
//
// Every mode also reports the tool's own CPU time (getrusage) so a reader can
// tell whether the tool or the server was the bottleneck, and, given
// Options.ServerPID, the server's CPU time (/proc/PID/stat) per delivered
// frame, connection or room.
//
// # Messages
//
// A bench message is the text "G:SEQ:NANOS:" padded with '.' to
// Options.Size bytes: G is the sender's global number (room*Senders +
// sender), SEQ its sequence number from 0 and NANOS the send time in
// nanoseconds since the run started (monotonic). Before sending, every client
// sends "j:N" (N its global client number) and waits for it to come back:
// once a client has its own join message back, the room has processed its
// connection, so from then on it gets every message of the room.
//
// # Goroutines
//
// A run owns all its goroutines: one reader per connection (fanout), one
// writer per sender, dial workers, and one monitor; all have ended when the
// mode function returns.
package loadgen
