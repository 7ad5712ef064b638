package stateroom_test

import (
	"fmt"
	"time"

	"github.com/stateroom-go/stateroom"
)

// Counter is a service: a number every client of the room can change.
type Counter struct {
	stateroom.BaseService // no-op Init, Disconnect and Timer
	value                 int
}

func (c *Counter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("new value: %d", c.value)))
}

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

// printRoom is a stand-in for the server's room: it prints what the service
// sends.
type printRoom struct{}

func (printRoom) ID() string { return "lobby" }
func (printRoom) Send(to stateroom.Recipient, p stateroom.Payload) {
	fmt.Printf("to %v: %s\n", to, p)
}
func (printRoom) SetTimer(d time.Duration) { fmt.Println("timer", d) }

// A service embeds BaseService and implements the callbacks it needs. The
// server (package server) or the WebAssembly guest SDK (package guest) calls
// them; here a stand-in room prints what the service sends.
func Example() {
	factory := stateroom.New(func(roomID string) *Counter { return &Counter{} })
	svc, _ := factory.NewService("lobby")

	var room printRoom
	svc.Init(room)
	svc.Connect(room, stateroom.ConnectEvent{Client: 1})
	svc.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("increment")})
	svc.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("increment")})
	// Output:
	// to client 1: new value: 0
	// to everyone: new value: 1
	// to everyone: new value: 2
}
