// Command counter is a shared counter: every client of a room sees the
// same value and can change it.
package main

import (
	"errors"
	"strconv"

	"github.com/stateroom-go/stateroom"
)

// Counter is the counter service: "increment" and "decrement" change the
// value, and after every message everyone gets "new value: N" (as
// upstream's counter-service does). A new client gets the current value at
// once, so a fresh page shows the state, and everyone gets "clients: N"
// when a client joins or leaves, for the page to show who shares the
// counter. It is a stateroom.Snapshotter: with a store (`stateroom serve`
// and `dev` keep one by default) the value outlives restarts, rebuilds and
// hibernation.
type Counter struct {
	stateroom.BaseService
	value int
	// clients are the clients connected now. They are not part of the
	// snapshot: after a restart or a rebuild they reconnect and get
	// Connect again, and a room woken from hibernation, whose clients
	// stayed connected, names them to the new instance's Init.
	clients map[stateroom.ClientID]struct{}
}

// NewCounter returns the service of one room, starting at 0.
func NewCounter(roomID string) *Counter {
	return &Counter{clients: make(map[stateroom.ClientID]struct{})}
}

// Init counts the clients a room woken from hibernation kept: they are
// connected, and the new instance never saw their Connect. The count does
// not change for them, so nothing is sent.
func (c *Counter) Init(room stateroom.Room, ev stateroom.InitEvent) {
	for _, id := range ev.Clients {
		c.clients[id] = struct{}{}
	}
}

// Connect sends the current value to the new client, and the number of
// clients to everyone.
func (c *Counter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), c.current())
	c.clients[ev.Client] = struct{}{}
	room.Send(stateroom.Everyone, c.count())
}

// Disconnect tells the others how many clients are left.
func (c *Counter) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	delete(c.clients, ev.Client)
	room.Send(stateroom.EveryoneExcept(ev.Client), c.count())
}

// Message applies "increment" or "decrement" and broadcasts the value.
func (c *Counter) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	switch string(ev.Payload.Data) {
	case "increment":
		c.value++
	case "decrement":
		c.value--
	}
	room.Send(stateroom.Everyone, c.current())
}

// Snapshot returns the value as decimal text, the room's whole state: its
// clients reconnect by themselves.
func (c *Counter) Snapshot() ([]byte, error) {
	return strconv.AppendInt(nil, int64(c.value), 10), nil
}

// Restore sets the value a Snapshot saved.
func (c *Counter) Restore(b []byte) error {
	v, err := strconv.Atoi(string(b))
	if err != nil {
		// errors and strconv rather than fmt.Errorf: fmt would add a fifth
		// to the WebAssembly module.
		return errors.New("counter snapshot " + strconv.Quote(string(b)) + " is not a number: " + err.Error())
	}
	c.value = v
	return nil
}

func (c *Counter) current() stateroom.Payload {
	return stateroom.Text("new value: " + strconv.Itoa(c.value))
}

func (c *Counter) count() stateroom.Payload {
	return stateroom.Text("clients: " + strconv.Itoa(len(c.clients)))
}
