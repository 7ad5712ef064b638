package stateroom

// Service handles the events of one room. The runtime calls its methods one
// at a time, never concurrently, in the order the events happened; a room
// runs the Init event before any other.
//
// Embed [BaseService] to implement only the callbacks a service needs.
//
// A service that panics ends its room only: every client of the room is
// closed with [CloseServiceFault] and the next connection to that room id
// gets a fresh instance.
//
// A service may implement optional interfaces, listed in capabilities.go:
// [io.Closer] to release what it holds when its room ends, and
// [MemoryReporter] to report its memory to the admin API.
type Service interface {
	// Init runs once per instance, before any other callback: when the
	// room is created, before any client connects, and when a hibernated
	// room wakes on a new instance, whose clients [InitEvent.Clients]
	// names.
	Init(room Room, ev InitEvent)
	// Connect runs when a client joins the room.
	Connect(room Room, ev ConnectEvent)
	// Disconnect runs when a client has left the room. Messages sent to
	// that client from now on are dropped.
	Disconnect(room Room, ev DisconnectEvent)
	// Message runs for each message a client sends, in the order that
	// client sent them.
	Message(room Room, ev MessageEvent)
	// Timer runs when the timer set with [Room.SetTimer] fires.
	Timer(room Room, ev TimerEvent)
}

// BaseService implements every [Service] callback as a no-op. Embed it in a
// service type and define only the callbacks the service needs.
type BaseService struct{}

// Init does nothing.
func (BaseService) Init(Room, InitEvent) {}

// Connect does nothing.
func (BaseService) Connect(Room, ConnectEvent) {}

// Disconnect does nothing.
func (BaseService) Disconnect(Room, DisconnectEvent) {}

// Message does nothing.
func (BaseService) Message(Room, MessageEvent) {}

// Timer does nothing.
func (BaseService) Timer(Room, TimerEvent) {}

// InitEvent describes the start of a room. It is a struct so that fields
// can be added without breaking services.
type InitEvent struct {
	// Restored is true when the service's Restore was called with the
	// room's saved state just before (see [Snapshotter]): the room
	// existed before this process or this instance.
	Restored bool

	// Clients are the clients already connected to the room as this
	// instance starts, sorted by id: each will get its Disconnect when it
	// leaves, as if this instance had seen its Connect. It is empty for
	// a new room and for one restored after a restart (its clients'
	// connections are gone; they reconnect and get Connect). It is filled
	// when a hibernated room wakes (see server.Options.HibernateAfter):
	// its clients stayed connected while its instance was dropped, so a
	// service that keeps per-client state out of its snapshot learns here
	// who is still in the room. A WebAssembly service gets it through the
	// ABI's optional stateroom_member export, which the Go SDK provides.
	// The slice is the service's to keep.
	Clients []ClientID
}

// TimerEvent describes a firing of the room's timer. It has no fields yet;
// it is a struct so that fields can be added without breaking services.
type TimerEvent struct{}

// ConnectEvent describes a client that joined a room.
type ConnectEvent struct {
	// Client is the id the room gave the client. It is unique within the
	// room's lifetime, except that a client reconnecting with the same
	// token gets its old id back.
	Client ClientID
	// Identity is what the server's authentication hook attached to the
	// connection (server.Options.Authenticate), or nil without one. A
	// WebAssembly service never sees it: the ABI's Connect carries only the
	// client id.
	Identity any
}

// DisconnectEvent describes a client that left a room.
type DisconnectEvent struct {
	// Client is the id of the client that left.
	Client ClientID
}

// MessageEvent carries one message a client sent.
type MessageEvent struct {
	// Client is the sender.
	Client ClientID
	// Payload is the message, text or binary as the client sent it. Its
	// bytes are valid only during the callback: copy them to keep them.
	Payload Payload
}
