package rooms

import (
	"errors"
	"log/slog"

	"github.com/stateroom-go/stateroom"
)

// Member is what a connection offers a room: a queue for frames and a way to
// close it. The WebSocket transport implements it (server's conn); a
// placement that forwards rooms to another node implements it with a member
// whose frames travel back over the network. A Member's methods are called
// with the room's lock held: they must never block.
type Member interface {
	// Send queues one encoded frame (built by Config.Encode; the same
	// bytes go to every recipient, so they must not be modified) and says
	// what became of it.
	Send(frame []byte) SendResult
	// Close starts closing the client with code and reason: frames queued
	// so far are still delivered (unless discard, for a client that is not
	// reading them), then the close; later frames are dropped. Code 0
	// closes with no code. Only the first call counts: it reports whether
	// this call started the close.
	Close(code stateroom.CloseCode, reason string, discard bool) bool
}

// SendResult says what became of a frame given to Member.Send.
type SendResult uint8

const (
	// Queued: the frame will be written.
	Queued SendResult = iota
	// DroppedClosing: the client is being closed.
	DroppedClosing
	// QueueFull: the client's queue is full; the room closes it as a slow
	// consumer.
	QueueFull
)

// Placement finds or creates rooms: the seam between the transport and the
// room runtime. [Registry] places every room in this process; a cluster
// places a room on the node that owns it and returns a Handle that forwards
// to it. The transport sees only Placement and Handle.
type Placement interface {
	// Join returns a handle holding a place in room req.Room for one
	// client, creating the room (its factory, then Init) if none runs. The
	// caller must follow with Handle.Connect or Handle.Release. Errors:
	// ErrShuttingDown, ErrTooManyRooms, ErrRoomFull, or the factory's own
	// (which may wrap stateroom.ErrRoomRefused).
	Join(req JoinRequest) (Handle, error)
}

// JoinRequest is one client's request to join a room.
type JoinRequest struct {
	// Room is the room id.
	Room string
	// Token is the client's reconnection token, "" for none: a client
	// with the token of an earlier client of the room gets its id back,
	// and replaces it if it is still connected.
	Token string
	// Identity is what authentication attached to the client; the service
	// sees it in ConnectEvent.Identity.
	Identity any
	// Creating, when set, is called when this join is the one that
	// creates the room (none of that id runs here), before the room's
	// factory: an error refuses the join with that error, and nothing is
	// created. The transport charges per-client room-creation limits
	// here, so that joining a room that runs (if empty, in its grace
	// period) costs nothing. It is called with the registry's lock held:
	// it must be quick and must not call the registry.
	Creating func() error
}

// Handle is one client's place in a room, from Join until it leaves. Its
// methods may be called from any goroutine; Message calls are delivered in
// the order they are made.
type Handle interface {
	// Connect makes the client a member with m as its connection and
	// delivers its Connect. If the room ended since Join, m is closed with
	// the code the room ended with. Call it at most once, instead of
	// Release.
	Connect(m Member)
	// Release gives up the place of a client whose connection failed
	// before Connect.
	Release()
	// Message hands one message of the client to the service, unless the
	// client has left. The payload's bytes are not kept after it returns.
	Message(p stateroom.Payload)
	// Leave removes the client, whose connection has ended, and delivers
	// its Disconnect. Later calls do nothing.
	Leave()
	// Kick closes the client with code and reason and delivers its
	// Disconnect (heartbeat timeout, slow consumer).
	Kick(code stateroom.CloseCode, reason string)
	// Client returns the client id the room gave, 0 before Connect or
	// when the room had ended.
	Client() stateroom.ClientID
	// Logger returns a logger with the room and client ids.
	Logger() *slog.Logger
}

// Errors of Join besides the factory's.
var (
	// ErrShuttingDown refuses a join once Shutdown has begun.
	ErrShuttingDown = errors.New("the server is shutting down; try again later")
	// ErrTooManyRooms refuses a join that would create a room past
	// Config.MaxRooms.
	ErrTooManyRooms = errors.New("the server runs as many rooms as it may (Options.MaxRooms); join a running room or try again later")
	// ErrUnavailable refuses a join that a placement cannot serve now
	// (a cluster without a quorum, a node cut off from it, an owner that
	// does not answer); the error wrapping it says why. Try again shortly.
	ErrUnavailable = errors.New("the room cannot be reached now; try again shortly")
	// ErrRoomFull refuses a join to a room at Config.MaxClientsPerRoom.
	ErrRoomFull = errors.New("room is full")
)
