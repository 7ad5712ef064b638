package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

const testTTL = 3 * time.Second

func openDirectories(t testing.TB, c *testCluster, ttl time.Duration) []*directory {
	t.Helper()
	var ds []*directory
	for i, js := range c.js {
		d, err := openDirectory(context.Background(), js, fmt.Sprintf("node%d", i+1), ttl, len(c.js))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// Every node races to claim the same rooms at once: each room gets exactly
// one owner, and every node is told the same owner and epoch.
func TestClaimRacesHaveOneWinner(t *testing.T) {
	c := startCluster(t, 3)
	ds := openDirectories(t, c, 30*time.Second)
	const rooms = 340 // 3 nodes x 340 rooms: 1,020 concurrent claims
	type answer struct {
		room string
		c    claim
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	ctx := context.Background()
	start := make(chan struct{}) // all claims wait for it, so they race
	for r := range rooms {
		for _, d := range ds {
			wg.Go(func() {
				<-start
				room := fmt.Sprintf("room-%d", r)
				cl, err := d.claim(ctx, room)
				if err != nil {
					t.Errorf("%s claims %s: %v", d.me().Node, room, err)
					return
				}
				mu.Lock()
				answers = append(answers, answer{room, cl})
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	byRoom := map[string][]claim{}
	for _, a := range answers {
		byRoom[a.room] = append(byRoom[a.room], a.c)
	}
	if len(byRoom) != rooms {
		t.Fatalf("%d rooms answered; want %d", len(byRoom), rooms)
	}
	wins := map[string]int{}
	for room, cs := range byRoom {
		mine := 0
		for _, cl := range cs {
			if cl.Owner != cs[0].Owner || cl.Epoch != cs[0].Epoch {
				t.Fatalf("room %s: nodes disagree on its owner: %+v", room, cs)
			}
			if cl.Mine {
				mine++
			}
			if cl.Takeover {
				t.Errorf("room %s: takeover with every lease alive: %+v", room, cl)
			}
		}
		if mine != 1 {
			t.Fatalf("room %s: %d nodes believe they own it; want 1: %+v", room, mine, cs)
		}
		wins[cs[0].Owner.Node]++
	}
	// Which node wins is not asserted: the node nearest the bucket's
	// stream leader often wins every race.
	t.Logf("rooms won per node: %v", wins)
}

// A node that stops renewing its lease loses its rooms to the next claim
// after the lease expires, and by then it has fenced itself: it stops
// serving at 2/3 of the TTL counted from when its last renewal started,
// while the others count the full TTL from when the server received it.
func TestTakeoverAfterLeaseExpiry(t *testing.T) {
	c := startCluster(t, 3)
	ds := openDirectories(t, c, testTTL)
	a, b := ds[0], ds[1]
	ctx := context.Background()
	first, err := a.claim(ctx, "lobby")
	if err != nil || !first.Mine {
		t.Fatalf("node1 claims lobby: %+v, %v", first, err)
	}
	// node3 keeps renewing; node2 too, so only node1's lease runs out.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range ds[1:] {
		wg.Go(func() {
			tick := time.NewTicker(testTTL / 5)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if err := d.renew(ctx); err != nil {
						t.Errorf("%s renews: %v", d.me().Node, err)
					}
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	if cl, err := b.claim(ctx, "lobby"); err != nil || cl.Mine || cl.Owner != a.me() {
		t.Fatalf("node2 claims lobby while node1's lease is alive: %+v, %v; want node1 as owner", cl, err)
	}
	deadline := time.Now().Add(testTTL + 30*time.Second)
	var taken claim
	for {
		cl, err := b.claim(ctx, "lobby")
		if err != nil {
			t.Fatal(err)
		}
		if cl.Mine {
			taken = cl
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1's lease did not expire within %v of its TTL", time.Until(deadline))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !taken.Takeover || taken.Epoch <= first.Epoch {
		t.Fatalf("node2's claim after expiry: %+v; want a takeover with an epoch after %d", taken, first.Epoch)
	}
	if !a.mustFence(time.Now()) {
		t.Fatal("node1 still believes it may serve after node2 took its room over")
	}
	if _, err := a.claim(ctx, "other"); !errors.Is(err, errFenced) {
		t.Fatalf("fenced node1 claims a room: %v; want errFenced", err)
	}
	// node1's renewal now fails: its lease expired (the compare-and-set on
	// its revision finds the expiry marker), so it stays fenced.
	if err := a.renew(ctx); err == nil {
		t.Fatal("node1 renewed a lease that had expired; want an error")
	}
	// node3 agrees that node2 owns the room now.
	if cl, err := ds[2].claim(ctx, "lobby"); err != nil || cl.Owner != b.me() || cl.Epoch != taken.Epoch {
		t.Fatalf("node3 claims lobby: %+v, %v; want node2 at epoch %d", cl, err, taken.Epoch)
	}
}

// Renewals keep a node's rooms: while it renews every TTL/5, no other
// node can take them over.
func TestRenewalsKeepRooms(t *testing.T) {
	c := startCluster(t, 3)
	ds := openDirectories(t, c, testTTL)
	ctx := context.Background()
	cl, err := ds[0].claim(ctx, "kept")
	if err != nil || !cl.Mine {
		t.Fatal(cl, err)
	}
	end := time.Now().Add(2 * testTTL)
	next := time.Now()
	for time.Now().Before(end) {
		if time.Now().After(next) {
			for _, d := range ds {
				if err := d.renew(ctx); err != nil {
					t.Fatalf("%s renews: %v", d.me().Node, err)
				}
			}
			next = time.Now().Add(testTTL / 5)
		}
		got, err := ds[1].claim(ctx, "kept")
		if err != nil {
			t.Fatal(err)
		}
		if got.Mine || got.Owner != ds[0].me() {
			t.Fatalf("node2 got a room whose owner renews its lease: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two live processes cannot use one node name; after the first resigns,
// the name is free at once (no TTL to wait for).
func TestNodeNameInUse(t *testing.T) {
	c := startCluster(t, 1)
	ctx := context.Background()
	d, err := openDirectory(ctx, c.js[0], "solo", testTTL, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openDirectory(ctx, c.js[0], "solo", testTTL, 1); !errors.Is(err, errNodeNameInUse) {
		t.Fatalf("second process named solo: %v; want errNodeNameInUse", err)
	}
	if err := d.resign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := openDirectory(ctx, c.js[0], "solo", testTTL, 1); err != nil {
		t.Fatalf("name after resign: %v", err)
	}
}

func TestNodeNamesChecked(t *testing.T) {
	for _, name := range []string{"", "a.b", "a b", "*", ">", "é", string(make([]byte, 65))} {
		if err := checkNodeName(name); err == nil {
			t.Errorf("checkNodeName(%q) = nil; want an error", name)
		}
	}
	for _, name := range []string{"a", "node-1", "N_2"} {
		if err := checkNodeName(name); err != nil {
			t.Errorf("checkNodeName(%q): %v", name, err)
		}
	}
}

// Idle, a cluster writes one lease renewal per node per renewal period and
// nothing else, whatever the number of rooms.
func TestIdleWritesAreRenewalsOnly(t *testing.T) {
	nodes := startNodes(t, 3, testTTL)
	for i, tn := range nodes { // some rooms, each owned somewhere
		c := dial(t, tn, fmt.Sprintf("idle-%d", i))
		await(t, c, "v=0", 10*time.Second)
	}
	ctx := context.Background()
	seq := func(bucket string) uint64 {
		s, err := nodes[0].node.js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	owners0, leases0 := seq(ownersBucket), seq(nodesBucket)
	start := time.Now()
	time.Sleep(2 * testTTL)
	periods := float64(time.Since(start)) / float64(testTTL/5)
	owners1, leases1 := seq(ownersBucket), seq(nodesBucket)
	if owners1 != owners0 {
		t.Errorf("idle cluster wrote %d times to the owners bucket; want 0", owners1-owners0)
	}
	// One renewal per node per period, plus one period of slack for the
	// ticks at the edges.
	if max := uint64(3 * (periods + 1)); leases1-leases0 > max {
		t.Errorf("idle cluster wrote %d lease renewals in %.1f periods; want at most %d (one per node per period)", leases1-leases0, periods, max)
	}
	t.Logf("idle: %d lease writes by 3 nodes in %.1f renewal periods, 0 owner writes", leases1-leases0, periods)
}
