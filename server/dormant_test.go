package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/store"
)

// dormantTimer is how far out the tests below set a timer that must not
// fire before the next few steps (a dial or two, a client's close) are
// done: seconds, because the machine may be busy, and each such step takes
// milliseconds.
const dormantTimer = "3s"

// startDormantServer starts a server with a store whose rooms are closing
// tallies (counting instance closes in closes, timer firings in timers).
func startDormantServer(t *testing.T, timers, closes *atomic.Int32, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	f := stateroom.New(func(string) *closingTally { return &closingTally{tally: tally{timers: timers}, closes: closes} })
	if opts.Store == nil {
		opts.Store = store.NewMemory()
	}
	return startServer(t, f, opts)
}

// TestDormantRoomWakesForItsTimer: a room whose last client left with its
// timer pending ends at its grace period like any empty room (its
// instance is closed and it leaves the running rooms) but stays dormant,
// and the running server starts it at the timer's deadline: the timer
// fires, and its effect is in the state the next client finds.
func TestDormantRoomWakesForItsTimer(t *testing.T) {
	var timers, closes atomic.Int32
	s, ts := startDormantServer(t, &timers, &closes, Options{RoomGracePeriod: 20 * time.Millisecond})
	c := dial(t, ts, "/ws/clock")
	expect(t, c, "n=0 restored=false")
	send(t, c, "add:1")
	expect(t, c, "n=1")
	send(t, c, "timer:"+dormantTimer)
	expect(t, c, "n=1")
	c.Close()

	eventually(t, func() bool {
		return len(s.Rooms()) == 0 && s.reg.DormantCount() == 1 && closes.Load() == 1
	}, "the empty room to end at its grace period and stay dormant")
	if n := timers.Load(); n != 0 {
		t.Fatalf("the timer fired %d times before the room went dormant", n)
	}

	eventually(t, func() bool { return timers.Load() == 1 }, "the dormant room's timer to fire in the running server")
	if n := s.reg.DormantCount(); n != 0 {
		t.Fatalf("%d rooms still dormant after the wake", n)
	}
	// Woken, the room is an empty room again: after its grace period it
	// ends, with no timer pending this time, and is not dormant.
	eventually(t, func() bool { return len(s.Rooms()) == 0 && closes.Load() == 2 }, "the woken room to end after its grace period")
	if n := s.reg.DormantCount(); n != 0 {
		t.Fatalf("a room without a pending timer went dormant (%d)", n)
	}
	c2 := dial(t, ts, "/ws/clock")
	expect(t, c2, "n=1001 restored=true")
}

// TestDormantRoomsAndMaxRooms: dormant rooms are not running rooms: they
// do not count against MaxRooms, so running rooms may fill it; a dormant
// room whose timer is due while the server is full waits (logged) and
// starts once a room ends; Shutdown does not wait for a dormant room's
// deadline; deleting a room's state ends its dormancy.
func TestDormantRoomsAndMaxRooms(t *testing.T) {
	var timers, closes atomic.Int32
	var logs syncBuffer
	s, ts := startDormantServer(t, &timers, &closes, Options{
		RoomGracePeriod: EndRoomsImmediately,
		MaxRooms:        2,
		AdminToken:      adminToken,
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
	})
	sleep := func(room, d string) {
		c := dial(t, ts, "/ws/"+room)
		expect(t, c, "n=0 restored=false")
		send(t, c, "timer:"+d)
		expect(t, c, "n=0")
		c.Close()
	}
	sleep("far", "1h") // outlives the test: Shutdown must not wait for it
	sleep("soon", dormantTimer)
	eventually(t, func() bool { return len(s.Rooms()) == 0 && s.reg.DormantCount() == 2 }, "two dormant rooms and none running")

	// Two running rooms fill MaxRooms beside the two dormant ones.
	b := dial(t, ts, "/ws/b")
	expect(t, b, "n=0 restored=false")
	c := dial(t, ts, "/ws/c")
	expect(t, c, "n=0 restored=false")
	expectRefused(t, ts, "/ws/x", nil, http.StatusServiceUnavailable, "limit")

	// soon's deadline passes while the server is full: its start is
	// refused, so its timer has not fired.
	refused := func() bool {
		for _, l := range logs.lines() {
			if strings.Contains(l, "room=soon") && strings.Contains(l, "the server runs as many rooms as it may") {
				return true
			}
		}
		return false
	}
	eventually(t, refused, "the refused wake of room soon to be logged")
	if n := timers.Load(); n != 0 {
		t.Fatalf("the timer fired %d times while its room could not run", n)
	}
	b.Close() // room b ends: soon starts on its next try
	eventually(t, func() bool { return timers.Load() == 1 }, "room soon's timer to fire once a room ended")
	if n := s.reg.DormantCount(); n != 1 {
		t.Fatalf("dormant rooms: %d, want 1 (far)", n)
	}

	// Deleting far's state ends its dormancy: nothing is left to wake.
	if status, body := adminDo(t, http.MethodDelete, ts.URL+"/admin/state/far", adminToken); status != http.StatusNoContent {
		t.Fatalf("DELETE /admin/state/far: HTTP %d %q", status, body)
	}
	if n := s.reg.DormantCount(); n != 0 {
		t.Fatalf("dormant rooms after deleting far's state: %d, want 0", n)
	}
}

// TestNoDormancyWithoutSavedState: a room that cannot be saved (its
// service is no Snapshotter) ends at its grace period as before, timer
// and all: waking it would run a fresh instance in its place.
func TestNoDormancyWithoutSavedState(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{Store: store.NewMemory(), RoomGracePeriod: EndRoomsImmediately})
	c := dial(t, ts, "/ws/plain")
	expectPrefix(t, c, "hello 1 room=plain")
	send(t, c, "timer:1h")
	c.Close()
	eventually(t, func() bool { return len(s.Rooms()) == 0 }, "the empty room to end")
	if n := s.reg.DormantCount(); n != 0 {
		t.Fatalf("a room with no saved state went dormant (%d)", n)
	}
}

// TestDormantAcrossFactorySwap: a room closed by a factory swap (a dev
// rebuild) with its timer pending is dormant too, and its timer fires in
// an instance of the new factory although no client reconnected.
func TestDormantAcrossFactorySwap(t *testing.T) {
	var oldTimers, newTimers atomic.Int32
	s, ts := startServer(t, tallyFactory(&oldTimers), Options{Store: store.NewMemory()})
	c := dial(t, ts, "/ws/swap")
	expect(t, c, "n=0 restored=false")
	send(t, c, "add:1")
	expect(t, c, "n=1")
	send(t, c, "timer:"+dormantTimer)
	expect(t, c, "n=1")
	s.SwapFactory(tallyFactory(&newTimers))
	expectClose(t, c, stateroom.CloseServiceRestart, "service restarted")
	if n := s.reg.DormantCount(); n != 1 {
		t.Fatalf("dormant rooms after the swap: %d, want 1", n)
	}
	eventually(t, func() bool { return newTimers.Load() == 1 }, "the timer to fire in the new factory's instance")
	if n := oldTimers.Load(); n != 0 {
		t.Fatalf("the old factory's instance got %d timer events", n)
	}
	c2 := dial(t, ts, "/ws/swap")
	expect(t, c2, "n=1001 restored=true")
}
