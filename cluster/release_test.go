package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
)

// endAtOnce makes the test servers end a room as soon as its last client
// leaves.
func endAtOnce(o *server.Options) { o.RoomGracePeriod = server.EndRoomsImmediately }

// waitFor polls cond until it holds, failing the test with what after
// within (a bound on failure only: it returns as soon as cond holds).
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last error: %v)", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownerEntryGone reports whether the owners bucket has no entry for room.
func ownerEntryGone(tn *testNode, room string) func() (bool, error) {
	return func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := tn.node.dir.owners.Get(ctx, roomKey(room))
		return errors.Is(err, jetstream.ErrKeyNotFound), err
	}
}

// An owned room that ends gives up its owner entry: the next join, through
// any node, creates it on that node with its saved state, and the owners
// bucket keeps nothing of the rooms that ended once their release markers
// expired.
func TestEndedRoomIsReleased(t *testing.T) {
	const ttl = 3 * time.Second // the release markers live one TTL
	nodes := startNodes(t, 3, ttl, endAtOnce)
	for i := range 6 {
		room := fmt.Sprintf("ends-%d", i)
		first, next := nodes[i%3], nodes[(i+1)%3]
		c := dial(t, first, room)
		await(t, c, "v=0", 10*time.Second)
		if got := owning(nodes, room); got != first {
			t.Fatalf("room %s runs on %v; want the node of its first join", room, got)
		}
		if err := c.Send(context.Background(), stateroom.Text("inc")); err != nil {
			t.Fatal(err)
		}
		await(t, c, "v=1", 10*time.Second)
		c.Close()
		waitFor(t, 20*time.Second, "the ended room's owner entry deleted", ownerEntryGone(first, room))
		if owning(nodes, room) != nil {
			t.Fatalf("room %s ended but a node still believes it owns it", room)
		}

		// The first join after the end decides the new owner, which
		// restores the saved state.
		c2 := dial(t, next, room)
		await(t, c2, "v=1", 10*time.Second)
		if got := owning(nodes, room); got != next {
			t.Fatalf("room %s re-created on %v; want the node of the first join after its end", room, got)
		}
		c2.Close()
		waitFor(t, 20*time.Second, "the re-created room's owner entry deleted", ownerEntryGone(next, room))
	}
	released := 0.0
	for _, tn := range nodes {
		released += testutil.ToFloat64(tn.node.m.ownership.WithLabelValues("released"))
	}
	if released != 12 {
		t.Errorf("releases counted: %v; want 12", released)
	}
	waitFor(t, 30*time.Second, "an empty owners bucket once the release markers expired", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := nodes[0].node.js.Stream(ctx, "KV_"+ownersBucket)
		if err != nil {
			return false, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return false, err
		}
		return info.State.Msgs == 0, fmt.Errorf("%d messages left", info.State.Msgs)
	})
}

// A room that ends while joins of it arrive through every node: each join
// either lands in the running room or re-creates it after the release, so
// the room never runs on two nodes, no client is left without its room,
// and no increment is lost (every new owner restores the last save).
func TestEndRacesJoin(t *testing.T) {
	nodes := startNodes(t, 3, 5*time.Second, endAtOnce)
	const room, workers, rounds = "churn", 3, 12
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var twice []string
	runsOn := func() []string {
		var on []string
		for _, tn := range nodes {
			if slices.ContainsFunc(tn.srv.Rooms(), func(ri server.RoomInfo) bool { return ri.ID == room }) {
				on = append(on, tn.node.opts.Node)
			}
		}
		return on
	}
	watch.Go(func() { // samples where the room runs
		for {
			// Twice in a row: one pass looks at the nodes one after the
			// other, so it could see the room end on one node and start
			// on the next within it.
			if on := runsOn(); len(on) > 1 && slices.Equal(on, runsOn()) {
				twice = on
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				c := dial(t, nodes[(w+r)%3], room)
				if err := awaitPrefix(c, "v=", 30*time.Second); err != nil {
					t.Errorf("worker %d round %d: %v", w, r, err)
					return
				}
				ping := "ping-" + strconv.Itoa(w) + "-" + strconv.Itoa(r)
				for _, p := range []string{"inc", ping} {
					if err := c.Send(context.Background(), stateroom.Text(p)); err != nil {
						t.Errorf("worker %d round %d: %v", w, r, err)
						return
					}
				}
				// The echo comes after the room counted the inc.
				if err := awaitErr(c, ping, 30*time.Second); err != nil {
					t.Errorf("worker %d round %d: %v", w, r, err)
					return
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if twice != nil {
		t.Errorf("room %q ran on %v at once", room, twice)
	}
	if t.Failed() {
		return
	}
	c := dial(t, nodes[0], room)
	await(t, c, "v="+strconv.Itoa(workers*rounds), 10*time.Second)
	c.Close()
	waitFor(t, 20*time.Second, "the room's owner entry deleted after the last client", ownerEntryGone(nodes[0], room))
	var released, created float64
	for _, tn := range nodes {
		released += testutil.ToFloat64(tn.node.m.ownership.WithLabelValues("released"))
		created += testutil.ToFloat64(tn.node.m.ownership.WithLabelValues("created"))
	}
	t.Logf("the room was created %v times and released %v times", created, released)
}

// awaitPrefix reads c's messages until one starts with prefix.
func awaitPrefix(c *client.Conn, prefix string, within time.Duration) error {
	timeout := time.After(within)
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return fmt.Errorf("connection ended (%v) before a message starting with %q", c.Err(), prefix)
			}
			if strings.HasPrefix(m.String(), prefix) {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no message starting with %q within %v", prefix, within)
		}
	}
}

// A join through one node that creates the room on another (the owner
// entry is there, the room does not run) is charged to the client's
// address on the node it connected to, as a local creation is.
func TestRemoteCreationIsCharged(t *testing.T) {
	nodes := startNodes(t, 3, 5*time.Second, func(o *server.Options) { o.MaxRoomsCreatedPerIP = 1 })
	owner, gateway := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Owner entries of rooms that do not run, as a room that ended and
	// has not been given up yet leaves.
	for _, room := range []string{"made-1", "made-2"} {
		cl, err := owner.node.dir.claim(ctx, room)
		if err != nil || !cl.Mine {
			t.Fatalf("claim %s: %+v, %v", room, cl, err)
		}
		if err := owner.node.owner.adopt(ctx, room, cl); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, gateway, "made-1")
	await(t, c, "v=0", 10*time.Second)
	if got := owning(nodes, "made-1"); got != owner {
		t.Fatalf("made-1 runs on %v; want the node of its entry", got)
	}
	_, err := client.Dial(ctx, gateway.url(), client.Options{Room: "made-2"})
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("a second room created on the owner for the same address: %v; want 429 (MaxRoomsCreatedPerIP 1)", err)
	}
	if slices.ContainsFunc(owner.srv.Rooms(), func(ri server.RoomInfo) bool { return ri.ID == "made-2" }) {
		t.Fatal("the refused join created its room on the owner")
	}
	// Joining the running room is free.
	c2 := dial(t, gateway, "made-1")
	await(t, c2, "v=0", 10*time.Second)
}
