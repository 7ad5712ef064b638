// Command randomness is a Stateroom service that sends each client a random
// number when it connects, and a fresh one whenever the client sends "roll".
// It shows that crypto/rand inside a service reads real randomness, in the
// server process and in a WebAssembly guest alike (there through the host's
// WASI random_get, which package wasmhost backs with crypto/rand).
//
// Each number is followed by a draw from math/rand/v2's top-level
// functions, which use the Go runtime's generator rather than the host: in
// a module that `stateroom build` pre-initialised, that generator was
// seeded at build time, and package guest reseeds it in every room, so two
// rooms still draw different numbers (see package guest,
// "Pre-initialisation").
//
// Run it natively:
//
//	go run ./examples/randomness --port 8080
//
// or as a module:
//
//	stateroom dev ./examples/randomness
package main

import (
	"crypto/rand"
	"encoding/binary"
	randv2 "math/rand/v2"
	"strconv"

	"github.com/stateroom-go/stateroom"
)

// Randomness is the service: it keeps no state.
type Randomness struct {
	stateroom.BaseService
}

// NewRandomness returns the service of a room.
func NewRandomness(roomID string) *Randomness { return &Randomness{} }

// Connect sends the new client a random number.
func (*Randomness) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	roll(room, ev.Client)
}

// Message answers "roll" with a new random number; it ignores anything else.
func (*Randomness) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if !ev.Payload.Binary && ev.Payload.String() == "roll" {
		roll(room, ev.Client)
	}
}

// roll sends client a number from crypto/rand, then one from math/rand/v2.
func roll(room stateroom.Room, client stateroom.ClientID) {
	room.Send(stateroom.To(client), stateroom.Text(randomMessage()))
	room.Send(stateroom.To(client), stateroom.Text("math/rand/v2: "+strconv.FormatUint(randv2.Uint64(), 10)))
}

// randomMessage is "random number: N" with N uniform in [0, 2^64).
func randomMessage() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (Go 1.24+): it crashes the program instead
	return "random number: " + strconv.FormatUint(binary.LittleEndian.Uint64(b[:]), 10)
}
