package stateroom_test

import (
	"fmt"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// Counter is a service: a number every client of the room can change.
type Counter struct {
	stateroom.BaseService // no-op Init, Disconnect and Timer
	value                 int
}

// Connect tells the new client the current value.
func (c *Counter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("new value: %d", c.value)))
}

// Message applies "increment" or "decrement" and tells everyone the value.
func (c *Counter) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	switch ev.Payload.String() {
	case "increment":
		c.value++
	case "decrement":
		c.value--
	default:
		return
	}
	room.Send(stateroom.Everyone, stateroom.Text(fmt.Sprintf("new value: %d", c.value)))
}

// A service embeds BaseService and implements the callbacks it needs. The
// server (package server) or the WebAssembly guest SDK (package guest) calls
// them; here the recording room of package stateroomtest does, and prints
// what the service sent.
func Example() {
	factory := stateroom.New(func(roomID string) *Counter { return &Counter{} })
	svc, _ := factory.NewService("lobby")

	room := stateroomtest.NewRoom("lobby", svc) // runs Init
	a := room.Connect()
	room.Message(a, stateroom.Text("increment"))
	room.Message(a, stateroom.Text("increment"))
	for _, s := range room.Sent {
		fmt.Printf("to %v: %s\n", s.To, s.Payload)
	}
	// Output:
	// to client 1: new value: 0
	// to everyone: new value: 1
	// to everyone: new value: 2
}
