package server

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

var helloRE = regexp.MustCompile(`^hello (\d+) room=(.*) inst=(\d+)`)

// hello reads the greeting and returns the client id and service instance.
func hello(t *testing.T, c *client.Conn) (id int, inst string) {
	t.Helper()
	_, msg := read(t, c)
	m := helloRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("got %q, want a hello", msg)
	}
	id, _ = strconv.Atoi(m[1])
	return id, m[3]
}

// index returns the position of ev in events, or -1.
func index(events []string, ev string) int {
	for i, e := range events {
		if e == ev {
			return i
		}
	}
	return -1
}

func TestRoomLifecycle(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: EndRoomsImmediately})

	a := dial(t, ts, "/ws/r")
	id, inst := hello(t, a)
	b := dial(t, ts, "/ws/r")
	id2, inst2 := hello(t, b)
	if id != 1 || id2 != 2 || inst != inst2 {
		t.Fatalf("got clients %d (inst %s), %d (inst %s); want 1 and 2 of one instance", id, inst, id2, inst2)
	}
	other := dial(t, ts, "/ws/other")
	if oid, oinst := hello(t, other); oid != 1 || oinst == inst {
		t.Fatalf("room other: client %d of instance %s; want client 1 of its own instance", oid, oinst)
	}
	ev := log.snapshot()
	if i, j := index(ev, inst+" init r"), index(ev, inst+" connect 1"); i < 0 || j < i {
		t.Fatalf("Init must run before Connect; log: %q", ev)
	}

	a.Close()
	log.waitFor(t, inst+" disconnect 1")
	expect(t, b, "left 1")
	b.Close()
	log.waitFor(t, inst+" close")
	eventually(t, func() bool { return len(s.Rooms()) == 1 }, "room r to end; rooms %+v", s.Rooms())

	c := dial(t, ts, "/ws/r")
	id3, inst3 := hello(t, c)
	if id3 != 1 || inst3 == inst {
		t.Fatalf("after the room ended: client %d of instance %s; want client 1 of a fresh instance", id3, inst3)
	}
	if n := log.count(inst3 + " init r"); n != 1 {
		t.Errorf("fresh instance ran Init %d times", n)
	}
}

func TestGracePeriod(t *testing.T) {
	t.Parallel() // it waits out a grace period
	var log eventLog
	// Long enough for a rejoin on a loaded machine to land within it.
	s, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: 3 * time.Second})
	a := dial(t, ts, "/ws/g")
	_, inst := hello(t, a)
	a.Close()
	log.waitFor(t, inst+" disconnect 1")

	// Back within the grace period: same instance, next id.
	b := dial(t, ts, "/ws/g")
	id, inst2 := hello(t, b)
	if inst2 != inst || id != 2 {
		t.Fatalf("rejoin within grace: client %d of instance %s; want client 2 of %s", id, inst2, inst)
	}
	b.Close()
	log.waitFor(t, inst+" disconnect 2")
	if log.count(inst+" close") != 0 {
		t.Fatal("room ended at once despite the grace period")
	}
	log.waitFor(t, inst+" close")
	eventually(t, func() bool { return len(s.Rooms()) == 0 }, "room to end after the grace period")
}

func TestKeepRoomsForever(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: KeepRoomsForever})
	a := dial(t, ts, "/ws/k")
	_, inst := hello(t, a)
	a.Close()
	log.waitFor(t, inst+" disconnect 1")
	if rooms := s.Rooms(); len(rooms) != 1 || rooms[0].Clients != 0 {
		t.Fatalf("Rooms: %+v", rooms)
	}
	b := dial(t, ts, "/ws/k")
	if id, inst2 := hello(t, b); inst2 != inst || id != 2 {
		t.Fatalf("got client %d of %s, want 2 of %s", id, inst2, inst)
	}
}

// TestJoinEndingRoom hammers one room that ends whenever it empties, so
// joins race with the room ending: every join must land in a live room.
func TestJoinEndingRoom(t *testing.T) {
	var log eventLog
	// Every join that finds the room ended creates it again: not the
	// room-creation budget's business here.
	_, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: EndRoomsImmediately, MaxRoomsCreatedPerIP: NoLimit})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 40 {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				c, err := client.Dial(ctx, wsURL(ts, "/ws/churn"), client.Options{})
				cancel()
				if err != nil {
					t.Errorf("worker %d dial %d: %v", g, i, err)
					return
				}
				msg, err := recv(c)
				if err != nil || !strings.HasPrefix(msg.String(), "hello ") {
					t.Errorf("worker %d join %d: got %q, %v; want a hello", g, i, msg.Data, err)
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	// Every instance saw Init before anything else, and no call overlapped.
	seen := map[string]bool{}
	for _, e := range log.snapshot() {
		inst, what, _ := strings.Cut(e, " ")
		if e == "CONCURRENT CALL" {
			t.Fatal("service called concurrently")
		}
		if strings.HasPrefix(what, "init") {
			seen[inst] = true
		} else if !seen[inst] {
			t.Fatalf("instance %s got %q before Init", inst, what)
		}
	}
}

func TestMessageOrder(t *testing.T) {
	var log eventLog
	// n messages at once are past the default rate limit's burst.
	_, ts := startServer(t, probeFactory(&log, ""), Options{MessageRate: NoLimit})
	const n = 300
	clients := make([]*client.Conn, 3)
	for i := range clients {
		clients[i] = dial(t, ts, "/ws/order")
		hello(t, clients[i])
	}
	for i := range n {
		send(t, clients[0], "echo:e"+strconv.Itoa(i))
	}
	for i := range n {
		expect(t, clients[0], "e"+strconv.Itoa(i))
	}
	for i := range n {
		send(t, clients[1], "all:b"+strconv.Itoa(i))
	}
	for _, c := range clients {
		for i := range n {
			expect(t, c, "b"+strconv.Itoa(i))
		}
	}
	send(t, clients[2], "others:not for 2")
	expect(t, clients[0], "not for 2")
	expect(t, clients[1], "not for 2")
	send(t, clients[2], "to:2:for 2 only")
	expect(t, clients[1], "for 2 only")
	send(t, clients[2], "echo:sync") // nothing else arrived at client 3
	expect(t, clients[2], "sync")
}

// TestSerialDispatch has many clients send at once: the probe records a
// call that overlaps another, and -race checks the unlocked state.
func TestSerialDispatch(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{})
	const clients, each = 8, 100
	conns := make([]*client.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, ts, "/ws/serial")
		hello(t, conns[i])
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for range each {
				if err := c.Send(ctx, stateroom.Text("x")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The probe counts every message, the "count" requests too.
	asked := 0
	eventually(t, func() bool {
		asked++
		send(t, conns[0], "count")
		_, got := read(t, conns[0])
		return got == strconv.Itoa(clients*each+asked)
	}, "all %d messages handled", clients*each)
	if log.count("CONCURRENT CALL") != 0 {
		t.Fatal("service called concurrently")
	}
}

func TestTokenReconnect(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{})
	a := dial(t, ts, "/ws/tok?token=alice")
	id, inst := hello(t, a)
	b := dial(t, ts, "/ws/tok")
	if idb, _ := hello(t, b); idb != 2 {
		t.Fatalf("second client got id %d, want 2", idb)
	}

	// Alice again while her first connection is open: it is replaced.
	a2 := dial(t, ts, "/ws/tok?token=alice")
	if id2, _ := hello(t, a2); id2 != id {
		t.Fatalf("same token got id %d, want %d", id2, id)
	}
	expectClose(t, a, stateroom.CloseReplaced, "replaced by a newer connection with the same token")
	ev := log.snapshot()
	disc := index(ev, inst+" disconnect 1")
	var connects []int
	for i, e := range ev {
		if e == inst+" connect 1" {
			connects = append(connects, i)
		}
	}
	if disc < 0 || len(connects) != 2 || !(connects[0] < disc && disc < connects[1]) {
		t.Fatalf("want connect 1, disconnect 1, connect 1 in order; log: %q", ev)
	}
	expect(t, b, "left 1")

	// After leaving, the token still maps to the id while the room lives.
	a2.Close()
	expect(t, b, "left 1")
	a3 := dial(t, ts, "/ws/tok?token=alice")
	if id3, _ := hello(t, a3); id3 != id {
		t.Fatalf("token after reconnect got id %d, want %d", id3, id)
	}
	c := dial(t, ts, "/ws/tok?token=carol")
	if idc, _ := hello(t, c); idc != 3 {
		t.Fatalf("new token got id %d, want 3", idc)
	}
}

func TestTimer(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: EndRoomsImmediately})

	t.Run("fires once", func(t *testing.T) {
		c := dial(t, ts, "/ws/t1")
		_, inst := hello(t, c)
		send(t, c, "timer:20ms")
		expect(t, c, "timer fired")
		// A second firing would come before this echo's answer if it
		// were due; give it several periods.
		time.Sleep(100 * time.Millisecond)
		send(t, c, "echo:after")
		expect(t, c, "after")
		if n := log.count(inst + " timer"); n != 1 {
			t.Errorf("timer fired %d times, want 1", n)
		}
	})
	t.Run("replaces a pending timer", func(t *testing.T) {
		c := dial(t, ts, "/ws/t2")
		_, inst := hello(t, c)
		send(t, c, "timer:1h")
		send(t, c, "timer:10ms")
		expect(t, c, "timer fired")
		send(t, c, "timer:1h") // replaced again, never fires
		time.Sleep(50 * time.Millisecond)
		send(t, c, "echo:after")
		expect(t, c, "after")
		if n := log.count(inst + " timer"); n != 1 {
			t.Errorf("timer fired %d times, want 1", n)
		}
	})
	t.Run("zero fires after the current event", func(t *testing.T) {
		c := dial(t, ts, "/ws/t3")
		hello(t, c)
		send(t, c, "timer0:first")
		send(t, c, "echo:third")
		expect(t, c, "first")
		expect(t, c, "timer fired")
		expect(t, c, "third")
	})
	t.Run("dies with the room", func(t *testing.T) {
		c := dial(t, ts, "/ws/t4")
		_, inst := hello(t, c)
		send(t, c, "timer:50ms")
		send(t, c, "echo:set")
		expect(t, c, "set")
		c.Close()
		log.waitFor(t, inst+" close")
		time.Sleep(150 * time.Millisecond)
		if n := log.count(inst + " timer"); n != 0 {
			t.Errorf("timer fired %d times after the room ended", n)
		}
	})
}

func TestPanicEndsOnlyItsRoom(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{})
	for i, tc := range []struct {
		cmd    string
		reason string
	}{
		{
			cmd:    "panic",
			reason: "service fault",
		},
		{
			cmd:    "fault:game over",
			reason: "game over",
		},
		{
			cmd:    "wrapfault:wrapped reason",
			reason: "wrapped reason",
		},
		{
			cmd:    "fault:" + strings.Repeat("é", 100),
			reason: strings.Repeat("é", 61), // cut to 123 bytes on a rune boundary
		},
	} {
		t.Run(tc.cmd[:min(len(tc.cmd), 20)], func(t *testing.T) {
			a1 := dial(t, ts, "/ws/p")
			_, inst := hello(t, a1)
			a2 := dial(t, ts, "/ws/p")
			hello(t, a2)
			// A room of its own per case: the previous case's client of
			// the other room leaves as this one starts, and its "left"
			// would race this case's messages.
			b := dial(t, ts, "/ws/q"+strconv.Itoa(i))
			hello(t, b)

			send(t, a1, tc.cmd)
			expectClose(t, a1, stateroom.CloseServiceFault, tc.reason)
			expectClose(t, a2, stateroom.CloseServiceFault, tc.reason)
			log.waitFor(t, inst+" close")
			eventually(t, func() bool {
				for _, r := range s.Rooms() {
					if r.ID == "p" {
						return false
					}
				}
				return true
			}, "room p to be removed")
			// Nothing reached the instance after its panic but Close.
			ev := log.snapshot()
			for _, e := range ev[index(ev, inst+" panicking")+1:] {
				if strings.HasPrefix(e, inst+" ") && e != inst+" close" {
					t.Errorf("service called after its panic: %q", e)
				}
			}
			// The other room is untouched; the next connection gets a
			// fresh instance.
			send(t, b, "echo:alive")
			expect(t, b, "alive")
			c := dial(t, ts, "/ws/p")
			if _, inst2 := hello(t, c); inst2 == inst {
				t.Fatal("reconnect after a panic got the same instance")
			}
			for _, c := range []*client.Conn{b, c} {
				c.Close()
			}
		})
	}
	if n := log.count("CONCURRENT CALL"); n != 0 {
		t.Fatalf("%d concurrent calls", n)
	}
}

func TestInitPanic(t *testing.T) {
	f := stateroom.New(func(string) *initPanicker { return &initPanicker{} })
	_, ts := startServer(t, f, Options{})
	_, err := tryDial(t, wsURL(ts, "/ws/x"), client.Options{})
	if err == nil {
		t.Fatal("dial succeeded, want HTTP 500")
	}
	if he, ok := errors.AsType[*client.HandshakeError](err); !ok || he.Status != 500 {
		t.Fatalf("got %v, want HTTP 500", err)
	}
}

type initPanicker struct{ stateroom.BaseService }

func (initPanicker) Init(stateroom.Room, stateroom.InitEvent) { panic("init failed") }
