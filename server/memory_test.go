package server

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// TestMemoryReleasedAfterMassClose: once at least half of the peak's
// connections (and at least minDrop) have closed, the server releases
// memory once; with KeepFreedMemory it never does.
func TestMemoryReleasedAfterMassClose(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepFreedMemory=%v", keep), func(t *testing.T) {
			s, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), Options{KeepFreedMemory: keep})
			var released atomic.Int32
			s.conns.mu.Lock()
			s.conns.memRelease = memoryRelease{minDrop: 4, delay: 10 * time.Millisecond, free: func() { released.Add(1) }}
			s.conns.mu.Unlock()

			const n = 8
			clients := make([]*client.Conn, n)
			for i := range clients {
				clients[i] = dial(t, ts, fmt.Sprintf("/ws/m%d", i))
			}
			eventually(t, func() bool { return liveConns(s) == n }, "%d connections", n)
			for _, c := range clients[:n/2-1] { // three gone: not yet half
				c.Close()
			}
			eventually(t, func() bool { return liveConns(s) == n-(n/2-1) }, "three connections to close")
			time.Sleep(50 * time.Millisecond) // five times the delay: a release would have happened
			if got := released.Load(); got != 0 {
				t.Fatalf("released %d times with %d of %d connections closed, want 0", got, n/2-1, n)
			}
			clients[n/2-1].Close() // the fourth: half the peak, and minDrop
			eventually(t, func() bool { return liveConns(s) == n/2 }, "four connections to close")
			if keep {
				time.Sleep(50 * time.Millisecond)
				if got := released.Load(); got != 0 {
					t.Fatalf("released %d times with KeepFreedMemory, want 0", got)
				}
				return
			}
			eventually(t, func() bool { return released.Load() == 1 }, "one release")
			time.Sleep(50 * time.Millisecond)
			if got := released.Load(); got != 1 {
				t.Fatalf("released %d times after one mass close, want 1", got)
			}
		})
	}
}

// TestMemoryReleasedAfterHibernations: rooms that drop their instances
// count towards a release as closed connections do: minDropped hibernations
// release memory once, fewer do not, and the count starts again after.
func TestMemoryReleasedAfterHibernations(t *testing.T) {
	f := stateroom.New(func(string) *tally { return &tally{} })
	s, ts := startServer(t, f, Options{HibernateAfter: 20 * time.Millisecond})
	var released atomic.Int32
	s.conns.mu.Lock()
	s.conns.memRelease = memoryRelease{minDrop: 1000, minDropped: 4, delay: 10 * time.Millisecond, free: func() { released.Add(1) }}
	s.conns.mu.Unlock()
	hibernated := func() int {
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		return s.conns.dropped
	}

	for i := range 3 { // their clients stay: only the instances go
		c := dial(t, ts, fmt.Sprintf("/ws/h%d", i))
		expect(t, c, "n=0 restored=false")
	}
	eventually(t, func() bool { return hibernated() == 3 }, "three rooms to hibernate (have %d)", hibernated())
	time.Sleep(50 * time.Millisecond) // five times the delay: a release would have happened
	if got := released.Load(); got != 0 {
		t.Fatalf("released %d times after 3 hibernations, want 0 (minDropped is 4)", got)
	}
	c := dial(t, ts, "/ws/h3")
	expect(t, c, "n=0 restored=false")
	eventually(t, func() bool { return released.Load() == 1 }, "one release after the fourth hibernation")
	eventually(t, func() bool { return hibernated() == 0 }, "the count to start again after the release (have %d)", hibernated())
	if got := liveConns(s); got != 4 {
		t.Fatalf("%d connections after the release, want 4: hibernation keeps clients", got)
	}

	// Within the spacing after a release, hibernations release nothing.
	s.conns.mu.Lock()
	s.conns.memRelease.spacing = time.Hour
	s.conns.mu.Unlock()
	for i := 4; i < 8; i++ {
		c := dial(t, ts, fmt.Sprintf("/ws/h%d", i))
		expect(t, c, "n=0 restored=false")
	}
	eventually(t, func() bool { return hibernated() >= 4 }, "four more rooms to hibernate (have %d)", hibernated())
	time.Sleep(50 * time.Millisecond)
	if got := released.Load(); got != 1 {
		t.Fatalf("released %d times, want 1: a second release came within the spacing", got)
	}
}

// TestMemoryReleasedAfterRoomsEnd: a room that ends dropped its instance
// as a hibernated one did, and counts the same; once no room is left,
// minIdle such drops release memory at once, spacing or not, and fewer
// do not. Real clients close; the rooms end as their last client goes.
func TestMemoryReleasedAfterRoomsEnd(t *testing.T) {
	s, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), Options{RoomGracePeriod: EndRoomsImmediately})
	var released atomic.Int32
	s.conns.mu.Lock()
	// Neither closed connections nor the steady count release here, and
	// the last release was just now: only "no room left" can.
	s.conns.memRelease = memoryRelease{minDrop: 1000, minDropped: 1000, minIdle: 3, spacing: time.Hour,
		delay: 10 * time.Millisecond, free: func() { released.Add(1) }}
	s.conns.released = time.Now()
	s.conns.mu.Unlock()
	dropped := func() int {
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		return s.conns.dropped
	}
	noRelease := func(why string) {
		t.Helper()
		time.Sleep(50 * time.Millisecond) // five times the delay: a release would have happened
		if got := released.Load(); got != 0 {
			t.Fatalf("released %d times %s, want 0", got, why)
		}
	}

	clients := make([]*client.Conn, 4)
	for i := range clients {
		clients[i] = dial(t, ts, fmt.Sprintf("/ws/e%d", i))
	}
	eventually(t, func() bool { return s.reg.RoomCount() == 4 }, "four rooms (have %d)", s.reg.RoomCount())
	for _, c := range clients[:3] {
		c.Close()
	}
	eventually(t, func() bool { return dropped() == 3 }, "three rooms to end and be counted (have %d)", dropped())
	noRelease("with minIdle rooms ended but one room left")
	clients[3].Close() // the last room: none left
	eventually(t, func() bool { return released.Load() == 1 }, "one release once every room has ended")
	eventually(t, func() bool { return dropped() == 0 }, "the count to start again after the release (have %d)", dropped())

	// Fewer than minIdle since the last release: nothing, though every
	// room has ended again.
	released.Store(0)
	for i := range 2 {
		c := dial(t, ts, fmt.Sprintf("/ws/f%d", i))
		eventually(t, func() bool { return s.reg.RoomCount() == 1 }, "room f%d", i)
		c.Close()
		eventually(t, func() bool { return s.reg.RoomCount() == 0 }, "room f%d to end", i)
	}
	eventually(t, func() bool { return dropped() == 2 }, "two rooms counted (have %d)", dropped())
	noRelease("with fewer than minIdle rooms ended")
}

// TestIdleReleaseNeedsAnIdleServer: a release scheduled because no room
// was left goes ahead only if the server stayed idle through its delay. A
// room that starts meanwhile cancels it (the count is kept), and the next
// time every room has ended it is scheduled again and runs. With
// KeepFreedMemory there is none at all.
func TestIdleReleaseNeedsAnIdleServer(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepFreedMemory=%v", keep), func(t *testing.T) {
			s, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), Options{RoomGracePeriod: EndRoomsImmediately, KeepFreedMemory: keep})
			var released atomic.Int32
			// The delay is long beside a dial on a loaded machine, so the
			// room below starts within it.
			const delay = 2 * time.Second
			s.conns.mu.Lock()
			s.conns.memRelease = memoryRelease{minDrop: 1000, minDropped: 1000, minIdle: 1, spacing: time.Hour,
				delay: delay, free: func() { released.Add(1) }}
			s.conns.released = time.Now()
			s.conns.mu.Unlock()
			state := func() (dropped int, releasing bool) {
				s.conns.mu.Lock()
				defer s.conns.mu.Unlock()
				return s.conns.dropped, s.conns.releasing
			}

			a := dial(t, ts, "/ws/a")
			eventually(t, func() bool { return s.reg.RoomCount() == 1 }, "room a")
			a.Close()
			eventually(t, func() bool { d, _ := state(); return d == 1 }, "room a to end and be counted")
			if keep {
				time.Sleep(delay + 100*time.Millisecond)
				if _, r := state(); r || released.Load() != 0 {
					t.Fatalf("with KeepFreedMemory a release was scheduled (%v) or ran (%d times)", r, released.Load())
				}
				return
			}
			if _, r := state(); !r {
				t.Fatal("no release scheduled once no room was left")
			}
			b := dial(t, ts, "/ws/b") // within the delay: the server is busy again
			eventually(t, func() bool { _, r := state(); return !r }, "the scheduled release to decide")
			if got := released.Load(); got != 0 {
				t.Fatalf("released %d times though a room started during the delay, want 0", got)
			}
			if d, _ := state(); d != 1 {
				t.Fatalf("count %d after a cancelled release, want it kept (1)", d)
			}
			b.Close()
			eventually(t, func() bool { return released.Load() == 1 }, "the release once every room has ended again")
		})
	}
}
