// Command echo is the echo server of the upstream Stateroom examples: it
// greets each client, broadcasts every text message with its sender, and
// tells everyone when a client leaves.
package main

import (
	"strconv"

	"github.com/stateroom-go/stateroom"
)

// Echo is the echo service. Its messages match upstream's echo-server,
// which prints client ids the way Rust's Debug does: "ClientId(1)".
type Echo struct {
	stateroom.BaseService
}

// NewEcho returns the service of one room.
func NewEcho(roomID string) *Echo { return &Echo{} }

// Connect greets the new client.
func (*Echo) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text("User "+clientID(ev.Client)+" connected."))
}

// Message broadcasts a text message with its sender; binary messages are
// ignored.
func (*Echo) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if ev.Payload.Binary {
		return
	}
	room.Send(stateroom.Everyone, stateroom.Text("User "+clientID(ev.Client)+" sent '"+string(ev.Payload.Data)+"'"))
}

// Disconnect tells everyone who left.
func (*Echo) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("User "+clientID(ev.Client)+" left."))
}

// clientID writes id as upstream does: "ClientId(1)". strconv rather than
// fmt keeps fmt out of the WebAssembly build (a fifth of its size).
func clientID(id stateroom.ClientID) string {
	return "ClientId(" + strconv.FormatUint(uint64(id), 10) + ")"
}
