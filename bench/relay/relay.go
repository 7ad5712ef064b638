// Package relay is the service `stateroom bench` drives: it sends every
// message, verbatim and of the same kind (text or binary), to everyone in
// the room, the sender included.
//
// Its one callback is the least work a room can do per message, so a
// benchmark of it measures the server: routing, queueing and writing.
// [Wasm] is the same relay as a WebAssembly guest, so that the same
// benchmark measures what the wasm path (package wasmhost) adds.
package relay

import "github.com/stateroom-go/stateroom"

// Service relays every message to everyone in its room.
type Service struct {
	stateroom.BaseService
}

// New returns the relay service of a room.
func New(roomID string) *Service { return &Service{} }

// Factory returns the factory that gives every room a relay service.
func Factory() stateroom.Factory { return stateroom.New(New) }

// Message sends the message to everyone in the room, the sender included.
func (*Service) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	room.Send(stateroom.Everyone, ev.Payload)
}
