//go:build !wasip1

package main

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clockTranscripts are the conversations the clock service must hold; a
// WebAssembly build of it must hold them too.
var clockTranscripts = []servertest.Transcript{
	{
		Name: "ticks count from zero for everyone",
		Script: []string{
			"a+",
			"b+",
			"a< Timer @ 0",
			"b< Timer @ 0",
			"a< Timer @ 1",
			"b< Timer @ 1",
			"a< Timer @ 2",
			"b< Timer @ 2",
		},
	},
}

// testClock plays the transcripts, in which every client must see tick 0,
// so each room starts once both its clients are in (see startWhenJoined):
// with a 200 ms period, a second client that took longer than that to
// join, as it may on a loaded machine, would miss the first tick.
func testClock(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, startWhenJoined(f, 2), server.Options{}, clockTranscripts)
}

// TestClock runs the clock fast; TestClockPeriod checks the real period.
func TestClock(t *testing.T) {
	testClock(t, stateroom.New(func(string) *Clock { return &Clock{Period: 200 * time.Millisecond} }))
}

// startWhenJoined wraps f so that a room's service gets its Init only when
// n clients have joined, at once followed by their Connects: to the
// service, the room starts with its clients already at the door. The
// clock's first tick is then due a period after every client is in,
// whatever the joins cost, instead of a period after the first one.
func startWhenJoined(f stateroom.Factory, n int) stateroom.Factory {
	return stateroom.FactoryFunc(func(roomID string) (stateroom.Service, error) {
		svc, err := f.NewService(roomID)
		if err != nil {
			return nil, err
		}
		return &heldStart{Service: svc, n: n}, nil
	})
}

// heldStart holds back Init and the first n Connects of its Service. The
// transcripts send no message before every client is in, so only Connect
// and Disconnect can come early.
type heldStart struct {
	stateroom.Service
	n       int
	held    []stateroom.ConnectEvent
	started bool
}

// Init is held back until the room has its n clients.
func (h *heldStart) Init(stateroom.Room, stateroom.InitEvent) {}

// Connect holds the first n-1 clients; the nth starts the service: Init,
// then every held Connect in order, all within this one event.
func (h *heldStart) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	if h.started {
		h.Service.Connect(room, ev)
		return
	}
	if h.held = append(h.held, ev); len(h.held) < h.n {
		return
	}
	h.started = true
	h.Service.Init(room, stateroom.InitEvent{})
	for _, ev := range h.held {
		h.Service.Connect(room, ev)
	}
}

// Disconnect of a held client forgets it: the service never saw it join.
func (h *heldStart) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	if h.started {
		h.Service.Disconnect(room, ev)
		return
	}
	h.held = slices.DeleteFunc(h.held, func(c stateroom.ConnectEvent) bool { return c.Client == ev.Client })
}

// Close releases the service when the room ends: a WebAssembly instance
// holds memory until then.
func (h *heldStart) Close() error {
	if c, ok := h.Service.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// TestClockTicks drives the service itself, with no clock: the timer is
// set to the period at Init and after every tick, and each tick goes to
// everyone connected, counting from 0.
func TestClockTicks(t *testing.T) {
	room := stateroomtest.NewRoom("r", &Clock{Period: 3 * time.Second})
	if !room.TimerSet || room.Timer != 3*time.Second {
		t.Fatalf("after Init: timer %v set %v; want 3s", room.Timer, room.TimerSet)
	}
	a := room.Connect()
	room.FireTimer()
	b := room.Connect()
	room.FireTimer()
	room.FireTimer()
	var got []string
	for _, s := range room.Sent {
		if s.To != stateroom.Everyone {
			t.Errorf("%v: want every tick sent to everyone", s)
		}
		got = append(got, s.Payload.String())
	}
	if want := []string{"Timer @ 0", "Timer @ 1", "Timer @ 2"}; !slices.Equal(got, want) {
		t.Errorf("ticks %q; want %q", got, want)
	}
	if len(room.Received(a)) != 3 || len(room.Received(b)) != 2 {
		t.Errorf("a got %d ticks, b %d; want 3 and 2 (b joined after the first)", len(room.Received(a)), len(room.Received(b)))
	}
	if !room.TimerSet || room.Timer != 3*time.Second {
		t.Errorf("after a tick: timer %v set %v; want 3s again", room.Timer, room.TimerSet)
	}
}

func TestClockPeriod(t *testing.T) {
	if c := NewClock("r"); c.Period != 4*time.Second {
		t.Fatalf("NewClock period is %v, want 4s as upstream", c.Period)
	}
}
