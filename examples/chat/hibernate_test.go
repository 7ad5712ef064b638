//go:build !wasip1

package main

import (
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/sleeptest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// testWake checks that a room woken from hibernation still knows who is
// here, by name, whichever event wakes it: a client joining, a message, a
// client leaving. Each wakes a fresh instance that never saw the earlier
// Connects; InitEvent.Clients names them and the snapshot keeps their
// nicknames.
func testWake(t *testing.T, f stateroom.Factory) {
	s := sleeptest.Start(t, f)
	a := s.Dial(t, "r")
	a.Expect("welcome, user1; set your name with /nick NAME", "here: user1")
	a.Send("/nick alice")
	a.Expect("user1 is now alice")
	b := s.Dial(t, "r")
	b.Expect("welcome, user2; set your name with /nick NAME", "here: alice user2")
	a.Expect("user2 joined")

	s.Asleep(t)
	c := s.Dial(t, "r") // its Connect wakes the room
	c.Expect("welcome, user3; set your name with /nick NAME", "here: alice user2 user3")
	a.Expect("user3 joined")
	b.Expect("user3 joined")

	s.Asleep(t)
	c.Send("/nick alice") // a message wakes it; the name is still taken
	c.Expect(`nickname "alice" is taken; pick another`)

	s.Asleep(t)
	a.Close() // a Disconnect wakes it
	b.Expect("alice left")
	c.Expect("alice left")
	b.Send("hi")
	b.Expect("user2: hi")
	c.Expect("user2: hi")
}

func TestChatWake(t *testing.T) { testWake(t, stateroom.New(NewChat)) }

// TestChatWakeWasm: the same, built to WebAssembly, through the ABI's
// members extension.
func TestChatWakeWasm(t *testing.T) {
	testWake(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{}))
}
