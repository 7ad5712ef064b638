package cluster

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

var partitionRuns = flag.Int("partition-runs", 3, "how many times TestPartitionNeverTwoOwners cuts a node off (the issue's long form: 20)")

// isolate cuts the node off the cluster as a partition would: its NATS
// server stops (routes and its own connection drop) while its Stateroom
// server keeps running and serving whatever it still believes it may.
func (tn *testNode) isolate() { tn.node.srv.Shutdown(); tn.node.srv.WaitForShutdown() }

// heal brings the node's NATS server back on the same ports: it rejoins
// the cluster and its connection reconnects.
func (tn *testNode) heal(t *testing.T) {
	srv, err := startEmbedded(tn.node.emb)
	if err != nil {
		t.Fatal(err)
	}
	tn.node.srv = srv
}

// A node cut off from the cluster stops serving its rooms before any
// other node takes them over (never two owners), the room comes back on
// another node with its state, and the healed node rejoins as a gateway.
// Each run cuts off the node that owns the room at that time.
//
// The default 3 runs fit CI; the long form is 20:
//
//	go test ./cluster -run TestPartitionNeverTwoOwners -partition-runs 20
func TestPartitionNeverTwoOwners(t *testing.T) {
	const ttl = 3 * time.Second
	nodes := startNodes(t, 3, ttl)
	var mu sync.Mutex
	events := map[string]time.Time{}
	record := func(what string) {
		mu.Lock()
		events[what] = time.Now()
		mu.Unlock()
	}
	for i, tn := range nodes {
		tn.node.onFence = func() { record(fmt.Sprintf("fence %d", i)) }
		tn.node.onTakeover = func(string) { record(fmt.Sprintf("takeover %d", i)) }
	}
	cs := make([]*client.Conn, len(nodes))
	for i, tn := range nodes {
		cs[i] = dial(t, tn, "contested")
		await(t, cs[i], "v=0", 10*time.Second)
	}
	count := 0
	for run := range *partitionRuns {
		victim := owning(nodes, "contested")
		if victim == nil {
			t.Fatalf("run %d: no node owns the room", run)
		}
		vi := indexOf(nodes, victim)
		// One more count, saved, so the takeover has a state to restore.
		count++
		cs[(vi+1)%3].Send(context.Background(), stateroom.Text("inc"))
		for _, c := range cs {
			await(t, c, "v="+strconv.Itoa(count), 20*time.Second)
		}
		waitSaved(t, nodes[(vi+1)%3], "contested", count)
		mu.Lock()
		clear(events)
		mu.Unlock()
		cut := time.Now()
		victim.isolate()
		// The clients of the other nodes find the room again, with its
		// state, on a node that took it over.
		for i, c := range cs {
			if i != vi {
				await(t, c, "v="+strconv.Itoa(count), ttl+30*time.Second)
			}
		}
		mu.Lock()
		fence, fenced := events[fmt.Sprintf("fence %d", vi)]
		var takeover time.Time
		taker := -1
		for i := range nodes {
			if at, ok := events[fmt.Sprintf("takeover %d", i)]; ok {
				takeover, taker = at, i
			}
		}
		mu.Unlock()
		if !fenced || taker < 0 || taker == vi {
			t.Fatalf("run %d: fence of node %d seen: %v; takeover by node %d", run, vi, fenced, taker)
		}
		if !fence.Before(takeover) {
			t.Fatalf("run %d: two owners: node %d took the room over %v after the cut, but node %d fenced itself only at %v", run, taker, takeover.Sub(cut), vi, fence.Sub(cut))
		}
		t.Logf("run %d: node %d cut off; fenced after %v, room taken over by node %d after %v", run, vi, fence.Sub(cut).Round(time.Millisecond), taker, takeover.Sub(cut).Round(time.Millisecond))
		victim.heal(t)
		// The healed node's client reconnects and reaches the room, now
		// forwarded to its new owner.
		await(t, cs[vi], "v="+strconv.Itoa(count), ttl+30*time.Second)
	}
}

func indexOf(nodes []*testNode, tn *testNode) int {
	for i, x := range nodes {
		if x == tn {
			return i
		}
	}
	return -1
}

// waitSaved waits until the store (read through tn) holds count for room.
func waitSaved(t *testing.T, tn *testNode, room string, count int) {
	t.Helper()
	want := fmt.Sprintf("tally=%d;", count)
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec, err := tn.node.Store().Load(context.Background(), room)
		if err == nil && strings.Contains(string(rec.Data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: %s not saved: %v", room, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node cut off that does not own the room (a gateway) closes the clients
// it forwards once it fences itself; the room stays where it is (no
// takeover) and keeps serving the other nodes' clients, and the cut-off
// node's client finds it again after the heal.
func TestPartitionOfAGateway(t *testing.T) {
	// Long enough that the nodes left keep their leases while JetStream
	// elects new leaders (the cut-off node may have led some streams).
	const ttl = 6 * time.Second
	nodes := startNodes(t, 3, ttl)
	var mu sync.Mutex
	var takeovers, fences int
	for _, tn := range nodes {
		tn.node.onTakeover = func(string) { mu.Lock(); takeovers++; mu.Unlock() }
		tn.node.onFence = func() { mu.Lock(); fences++; mu.Unlock() }
	}
	owner := dial(t, nodes[0], "steady")
	await(t, owner, "v=0", 10*time.Second)
	ownerNode := owning(nodes, "steady")
	var gw, other *testNode
	for _, tn := range nodes {
		switch {
		case tn == ownerNode:
		case gw == nil:
			gw = tn
		default:
			other = tn
		}
	}
	gc, oc := dial(t, gw, "steady"), dial(t, other, "steady")
	await(t, gc, "v=0", 10*time.Second)
	await(t, oc, "v=0", 10*time.Second)
	gw.isolate()
	// The gateway fences itself and closes its forwarded client (which then
	// retries against the fenced node until it heals).
	deadline := time.Now().Add(ttl + 30*time.Second)
	for gw.node.fenced.Load() == false {
		if time.Now().After(deadline) {
			t.Fatal("the cut-off gateway did not fence itself")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Meanwhile the room serves the others, from where it was.
	oc.Send(context.Background(), stateroom.Text("inc"))
	await(t, oc, "v=1", 20*time.Second)
	await(t, owner, "v=1", 20*time.Second)
	gw.heal(t)
	await(t, gc, "v=1", ttl+30*time.Second) // Connect after the reconnect
	mu.Lock()
	defer mu.Unlock()
	if takeovers != 0 {
		t.Errorf("%d takeovers after a gateway was cut off; want 0 (its owner never left)", takeovers)
	}
	if owning(nodes, "steady") != ownerNode {
		t.Error("the room moved although its owner stayed in the cluster")
	}
	if fences != 1 {
		t.Errorf("%d nodes fenced themselves; want 1, the cut-off gateway", fences)
	}
}
