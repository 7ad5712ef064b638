// Command cpu-hog is a Stateroom service that misbehaves on purpose: it
// spins the CPU for 10 seconds whenever a client connects. It shows the CPU
// budget of WebAssembly rooms: package wasmhost stops a guest that runs past
// its per-event budget (2 s by default) and ends that room alone with close
// code 1011, while other rooms carry on. Natively nothing can stop it; the
// room is stuck until the spin ends.
//
// Try it as a module:
//
//	stateroom dev ./examples/cpu-hog
//
// or natively (and wait):
//
//	go run ./examples/cpu-hog --port 8080
package main

import (
	"strconv"
	"time"

	"github.com/stateroom-go/stateroom"
)

// DefaultSpin is how long Connect spins unless told otherwise.
const DefaultSpin = 10 * time.Second

// CPUHog is the service.
type CPUHog struct {
	stateroom.BaseService
	// Spin is how long Connect keeps the CPU busy.
	Spin time.Duration
}

// NewCPUHog returns the service of a room, spinning DefaultSpin.
func NewCPUHog(roomID string) *CPUHog { return &CPUHog{Spin: DefaultSpin} }

// Connect busy-loops for Spin, then tells the client how many rounds it
// ran. It never sleeps or yields: the point is to hold the CPU.
func (h *CPUHog) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	start := time.Now()
	var rounds uint64
	for time.Since(start) < h.Spin {
		rounds++
	}
	room.Send(stateroom.To(ev.Client), stateroom.Text("spun "+strconv.FormatUint(rounds, 10)+" rounds"))
}

// Message answers "ping" with "pong", to show the room is responsive
// between spins.
func (h *CPUHog) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if !ev.Payload.Binary && ev.Payload.String() == "ping" {
		room.Send(stateroom.To(ev.Client), stateroom.Text("pong"))
	}
}
