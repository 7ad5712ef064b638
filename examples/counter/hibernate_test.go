//go:build !wasip1

package main

import (
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/sleeptest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// testWake checks that a room woken from hibernation counts the clients
// that stayed connected, whichever event wakes it: a client joining, a
// message, a client leaving. Each wakes a fresh instance that never saw
// the earlier Connects; InitEvent.Clients names them.
func testWake(t *testing.T, f stateroom.Factory) {
	s := sleeptest.Start(t, f)
	a := s.Dial(t, "r")
	a.Expect("new value: 0", "clients: 1")
	b := s.Dial(t, "r")
	b.Expect("new value: 0", "clients: 2")
	a.Expect("clients: 2")

	s.Asleep(t)
	c := s.Dial(t, "r") // its Connect wakes the room
	c.Expect("new value: 0", "clients: 3")
	a.Expect("clients: 3")
	b.Expect("clients: 3")

	s.Asleep(t)
	a.Send("increment") // a message wakes it
	for _, cl := range []*sleeptest.Client{a, b, c} {
		cl.Expect("new value: 1")
	}

	s.Asleep(t)
	b.Close() // a Disconnect wakes it
	a.Expect("clients: 2")
	c.Expect("clients: 2")
	c.Send("increment")
	a.Expect("new value: 2")
	c.Expect("new value: 2")
}

func TestCounterWake(t *testing.T) { testWake(t, stateroom.New(NewCounter)) }

// TestCounterWakeWasm: the same, built to WebAssembly, through the ABI's
// members extension.
func TestCounterWakeWasm(t *testing.T) {
	testWake(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{}))
}
