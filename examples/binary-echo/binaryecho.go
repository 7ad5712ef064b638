// Command binary-echo sends every message back to its sender, binary as
// binary and text as text.
package main

import "github.com/stateroom-go/stateroom"

// BinaryEcho is the binary echo service.
type BinaryEcho struct {
	stateroom.BaseService
}

// NewBinaryEcho returns the service of one room.
func NewBinaryEcho(roomID string) *BinaryEcho { return &BinaryEcho{} }

// Message echoes the message to its sender, keeping its kind. Send copies
// the bytes before it returns, so the event's buffer can be passed on.
func (*BinaryEcho) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	room.Send(stateroom.To(ev.Client), ev.Payload)
}
