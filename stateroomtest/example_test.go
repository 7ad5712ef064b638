package stateroomtest_test

import (
	"fmt"
	"strconv"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// Counter is the service under test: "+" and "-" change a number the room
// shares and everyone hears the new value, "bye" closes the sender.
type Counter struct {
	stateroom.BaseService
	value int
}

// Connect tells the new client the current value.
func (c *Counter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), c.current())
}

// Message applies a command.
func (c *Counter) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	switch ev.Payload.String() {
	case "+":
		c.value++
	case "-":
		c.value--
	case "bye":
		room.Close(ev.Client, stateroom.CloseNormal, "see you")
		return
	default:
		room.Send(stateroom.To(ev.Client), stateroom.Text("say + or -"))
		return
	}
	room.Send(stateroom.Everyone, c.current())
}

// Disconnect tells the others who left.
func (c *Counter) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("client "+ev.Client.String()+" left"))
}

func (c *Counter) current() stateroom.Payload {
	return stateroom.Text("value " + strconv.Itoa(c.value))
}

// A test drives the service through a recording room and checks what it
// sent, step by step with TakeSent or per client with Received.
func Example() {
	room := stateroomtest.NewRoom("lobby", &Counter{})
	a := room.Connect()
	b := room.Connect()
	room.Message(a, stateroom.Text("+"))
	room.Message(b, stateroom.Text("+"))
	room.Message(b, stateroom.Text("?"))
	for _, s := range room.TakeSent() {
		fmt.Println(s)
	}

	fmt.Println("-- b says bye")
	room.Message(b, stateroom.Text("bye"))
	fmt.Printf("closed %+v, still connected %v\n", room.Closed, room.Clients())
	for _, p := range room.Received(a) {
		fmt.Println("a received:", p)
	}
	// Output:
	// to client 1, reached [1]: text "value 0"
	// to client 2, reached [2]: text "value 0"
	// to everyone, reached [1 2]: text "value 1"
	// to everyone, reached [1 2]: text "value 2"
	// to client 2, reached [2]: text "say + or -"
	// -- b says bye
	// closed [{Client:2 Code:normal Reason:see you}], still connected [1]
	// a received: client 2 left
}
