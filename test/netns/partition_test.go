//go:build linux

package netns_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// defaultTTL is the nodes' --lease-ttl unless -netns-ttl says otherwise:
// a node fences itself 2/3 of it after its last renewal, and its rooms
// are taken over after it. 5 s, a third of the default, keeps CI's runs
// short; it is also shorter than a JetStream leader election (4 to 9 s in
// nats-server), so a cut or crash of a stream's leader makes the other
// nodes fence themselves too until a new leader is elected: more churn
// for the ownership protocol to get through without two owners.
const defaultTTL = 5 * time.Second

// A node cut off from the network (its link down in the switch) fences
// itself, closing its clients with 1012 and answering /status 503, before
// any other node takes its rooms over; the room comes back on a survivor
// with its saved state; after the heal the node rejoins as a new
// incarnation, and its clients reach the room on its new owner. Across
// the run no two nodes run the room at once (sampled, and from the nodes'
// logs: the survivor starts the room only after the cut-off node fenced
// itself), the new owner re-saves the room's record before running it (a
// new stored revision: the fence of the old owner's saves), no client
// sees the count go back, and the increments the cut-off node accepted
// but could not save never overwrite the survivors' state (the room,
// ended and restored from the store, has the survivors' count). Each run
// cuts off the next node.
//
// The default runs fit CI; the long form is
//
//	go test ./test/netns -run TestPartitionNeverTwoOwners -netns-runs 20 -timeout 60m -v
func TestPartitionNeverTwoOwners(t *testing.T) {
	c := startCluster(t, 3, *netnsTTL)
	for run := range *partitionRuns {
		c.partitionRun(run)
		if t.Failed() {
			return
		}
	}
}

func (c *testCluster) partitionRun(run int) {
	t := c.t
	t.Helper()
	victim, survivors := c.pick(run)
	room := fmt.Sprintf("partition-%d", run)

	// The first client, on the victim's own loopback, makes the victim
	// the room's owner; the survivors' clients reach it through the switch.
	vc, scs := c.roomOnVictim(run, room, victim, victim.name+"-local", victim.local, survivors)
	// Counts, saved, so the takeover has a state to restore.
	const counted = 3
	var seen time.Time
	for k := 1; k <= counted; k++ {
		scs[0].send("increment")
		for _, cc := range append([]*counterClient{vc}, scs...) {
			seen = cc.await(k, time.Time{}, waitTimeout)
		}
	}
	before := c.waitSaved(survivors[0], room, seen)

	w := c.watchOwners(room, victim, survivors)
	cut := time.Now()
	c.nw.setLink(t, victim.name, false)
	// The cut-off node does not know yet: its client counts on, which it
	// can no longer save. Those counts must never reach the store.
	const stale = 5
	for range stale {
		vc.send("increment")
	}
	code, closedAt := vc.closedWith(c.ttl + waitTimeout)
	if code != stateroom.CloseServiceRestart {
		t.Fatalf("run %d: the cut-off node's client was closed with %v, want %v (fenced)", run, code, stateroom.CloseServiceRestart)
	}
	st, err := c.status(victim)
	if err != nil || st.code != http.StatusServiceUnavailable || !st.Fenced {
		t.Fatalf("run %d: /status of the cut-off node %s: %+v (%v); want 503, fenced", run, victim.name, st, err)
	}
	// The survivors' clients find the room again, with its saved state.
	var back time.Time
	for _, cc := range scs {
		back = later(back, cc.await(counted, cut, waitTimeout))
	}
	taker := c.waitOwner(room, survivors)
	fence := since(victim.events(t, msgFenced), "", cut)
	// Every survivor that started the room after the cut (a survivor that
	// fenced itself too, its stream's leader gone, gives it up and another
	// may start it again) did so after the cut-off node's first fence.
	var started []logEvent
	var starts []string // "n2 +4.3s (takeover)", for the run's line
	for _, nd := range survivors {
		took := since(nd.events(t, msgTakeover), room, cut)
		for _, e := range since(nd.events(t, msgCreated), room, cut) {
			how := "claimed afresh"
			if slices.ContainsFunc(took, func(k logEvent) bool { return !k.Time.After(e.Time) }) {
				how = "takeover"
			}
			starts = append(starts, fmt.Sprintf("%s +%v (%s)", nd.name, e.Time.Sub(cut).Round(time.Millisecond), how))
			started = append(started, e)
		}
	}
	if len(fence) == 0 || len(started) == 0 {
		t.Fatalf("run %d: %d fence lines in node %s's log after the cut; room %s started %d times on the others", run, len(fence), victim.name, room, len(started))
	}
	fencedAt := fence[0].Time
	tookAt := started[0].Time
	for _, e := range started {
		if e.Time.Before(tookAt) {
			tookAt = e.Time
		}
	}
	if !fencedAt.Before(tookAt) {
		t.Fatalf("run %d: two owners: room %s started on a survivor %v after the cut, but node %s fenced itself only %v after it",
			run, room, tookAt.Sub(cut), victim.name, fencedAt.Sub(cut))
	}
	if back.Sub(cut) > c.ttl+5*time.Second {
		// Slow: what the survivors logged meanwhile says why.
		for _, nd := range survivors {
			t.Logf("run %d: node %s's log from the cut until the room was back:\n%s", run, nd.name, nd.explain(t, cut, back))
		}
	}
	// The new owner saved the record again before the room ran (its
	// fence: a save by the old owner, expecting the revision it knew,
	// fails from then on). Nothing else saved it since the cut: the
	// survivors' clients sent nothing, and the cut-off node cannot reach
	// the store. Polled: GET /admin/state may read a replica that lags.
	var after saved
	c.waitFor(fmt.Sprintf("a stored revision of room %s above %d, the takeover's re-save", room, before.Revision), func() bool {
		after, err = c.saved(taker, room)
		return err == nil && after.Revision > before.Revision
	}, func() string { return fmt.Sprintf("last %+v (%v)", after, err) })

	// The survivors count on; then the heal.
	scs[0].send("increment")
	for _, cc := range scs {
		seen = cc.await(counted+1, cut, waitTimeout)
	}
	c.waitSaved(taker, room, seen)
	healed := time.Now()
	c.nw.setLink(t, victim.name, true)
	c.waitInCluster(victim)
	// The healed node's clients reach the room, now forwarded to its
	// new owner, with the survivors' count, not the stale one.
	vc2 := dialCounter(t, victim.name+"-healed", victim.local, room, true)
	vc2.await(counted+1, time.Time{}, waitTimeout)
	w.stop()

	// The healed node registered again: a new incarnation, not the one
	// the survivors saw leave.
	var old []string
	for _, nd := range survivors {
		for _, e := range nd.events(t, msgLeft) {
			if e.Gone == victim.name && e.Time.After(cut) {
				old = append(old, e.Incarnation)
			}
		}
	}
	var again []string
	for _, e := range victim.events(t, msgReregister) {
		if e.Time.After(cut) {
			again = append(again, e.Incarnation)
		}
	}
	if len(old) == 0 || len(again) == 0 {
		t.Fatalf("run %d: the survivors saw node %s leave as incarnations %q; it registered again as %q: want both", run, victim.name, old, again)
	}
	if inc := again[len(again)-1]; slices.Contains(old, inc) {
		t.Fatalf("run %d: node %s came back as incarnation %s, the one that left", run, victim.name, inc)
	}

	// No stale overwrite: the room, ended on its owner, starts again from
	// the store with the survivors' count.
	c.closeRoom(room)
	fresh := dialCounter(t, survivors[0].name+"-fresh", survivors[0].remote, room, true)
	fresh.await(counted+1, time.Time{}, waitTimeout)
	for _, cc := range append(scs, vc2, fresh) {
		if b := cc.backwards(); len(b) > 0 {
			t.Fatalf("run %d: client %s saw the count go back: %v", run, cc.name, b)
		}
	}
	w.check(run)
	t.Logf("run %d: node %s cut off: its client closed with 1012 after %v; fenced after %v; room started on %s, back for the survivors' clients after %v; healed and back in the cluster after %v; %d owner samples; stored revision %d before the cut, %d after the takeover; %d reads of /admin/state older than an earlier one",
		run, victim.name, closedAt.Sub(cut).Round(time.Millisecond), fencedAt.Sub(cut).Round(time.Millisecond),
		strings.Join(starts, ", "), back.Sub(cut).Round(time.Millisecond), time.Since(healed).Round(time.Millisecond),
		w.samples, before.Revision, after.Revision, w.staleReads)
}

// since returns the events of es after from, of room (any room if "").
func since(es []logEvent, room string, from time.Time) []logEvent {
	var out []logEvent
	for _, e := range es {
		if (room == "" || e.Room == room) && e.Time.After(from) {
			out = append(out, e)
		}
	}
	return out
}

// waitOwner waits until exactly one of nodes runs the room, and returns it.
func (c *testCluster) waitOwner(room string, nodes []*node) *node {
	c.t.Helper()
	var owners []string
	var owner *node
	c.waitFor("owner of room "+room, func() bool {
		owners, owner = nil, nil
		for _, nd := range nodes {
			if ok, err := c.runs(nd, room); err == nil && ok {
				owners, owner = append(owners, nd.name), nd
			}
		}
		return len(owners) == 1
	}, func() string { return fmt.Sprintf("running on %q", owners) })
	return owner
}

// closeRoom ends the room on its owner through the admin API (which saves
// it first). The owner is looked up anew on each attempt: on a busy
// machine a node may fence itself again and the room move meanwhile.
func (c *testCluster) closeRoom(room string) {
	c.t.Helper()
	var last string
	c.waitFor("close of room "+room+" on its owner", func() bool {
		for _, nd := range c.nodes {
			if ok, err := c.runs(nd, room); err != nil || !ok {
				continue
			}
			req, err := http.NewRequest(http.MethodPost, "http://"+nd.local+"/admin/rooms/"+room+"/close", nil)
			if err != nil {
				c.t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := c.http.Do(req)
			if err != nil {
				last = err.Error()
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return true
			}
			last = nd.name + ": " + resp.Status
		}
		return false
	}, func() string { return "last answer: " + last })
}

// ownerWatch samples, while a node is cut off and healed, which nodes run
// the room (/admin/rooms of each, over its own loopback). Each round asks
// the survivors first and the cut-off node last: a round where a survivor
// already ran the room and the cut-off node still did is a real overlap,
// not one of sampling. It also reads the room's stored revision through
// each survivor's GET /admin/state: a revision is a sequence number of the
// replicated stream, which only grows, so a read below one seen before is
// a stale read (a replica that lags), counted; a stale write would show
// as a newer revision with an older value, which the clients' values and
// the restore at the end of each run catch instead.
type ownerWatch struct {
	c          *testCluster
	quit       chan struct{}
	done       chan struct{}
	mu         sync.Mutex
	samples    int
	overlap    []string
	staleReads int
}

func (c *testCluster) watchOwners(room string, victim *node, survivors []*node) *ownerWatch {
	w := &ownerWatch{c: c, quit: make(chan struct{}), done: make(chan struct{})}
	order := append(append([]*node(nil), survivors...), victim)
	go func() {
		defer close(w.done)
		var maxRev uint64
		for {
			var running []string
			for _, nd := range order {
				if ok, err := c.runs(nd, room); err == nil && ok {
					running = append(running, nd.name)
				}
			}
			stale := 0
			for _, nd := range survivors {
				if s, err := c.saved(nd, room); err == nil {
					if s.Revision < maxRev {
						stale++
					}
					maxRev = max(maxRev, s.Revision)
				}
			}
			w.mu.Lock()
			w.samples++
			w.staleReads += stale
			if len(running) > 1 {
				w.overlap = append(w.overlap, fmt.Sprintf("%v at %s", running, time.Now().Format(time.StampMilli)))
			}
			w.mu.Unlock()
			select {
			case <-w.quit:
				return
			case <-time.After(pollEvery):
			}
		}
	}()
	c.t.Cleanup(w.stop)
	return w
}

// stop ends the sampling; it may be called more than once.
func (w *ownerWatch) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// check fails the test if a sample saw two owners.
func (w *ownerWatch) check(run int) {
	w.c.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.overlap) > 0 {
		w.c.t.Fatalf("run %d: two nodes ran the room at once in %d of %d samples: %q", run, len(w.overlap), w.samples, w.overlap)
	}
	if w.samples < 2 {
		w.c.t.Fatalf("run %d: only %d owner samples", run, w.samples)
	}
}

// pick returns the node a run acts on (each node in turn) and the others.
func (c *testCluster) pick(run int) (victim *node, survivors []*node) {
	vi := run % len(c.nodes)
	for i, nd := range c.nodes {
		if i != vi {
			survivors = append(survivors, nd)
		}
	}
	return c.nodes[vi], survivors
}

// roomOnVictim makes victim the owner of room: its first client, dialled
// by victimName at victimAddr, does not reconnect (so the test sees its
// close) and joins first; then one reconnecting client per survivor,
// through the switch (their nodes forward them to the victim). Each has
// read the room's first value.
func (c *testCluster) roomOnVictim(run int, room string, victim *node, victimName, victimAddr string, survivors []*node) (vc *counterClient, scs []*counterClient) {
	t := c.t
	t.Helper()
	vc = dialCounter(t, victimName, victimAddr, room, false)
	vc.await(0, time.Time{}, waitTimeout)
	if owner := c.waitOwner(room, c.nodes); owner != victim {
		t.Fatalf("run %d: node %s runs room %s, not %s where its first client joined", run, owner.name, room, victim.name)
	}
	for _, nd := range survivors {
		cc := dialCounter(t, nd.name, nd.remote, room, true)
		cc.await(0, time.Time{}, waitTimeout)
		scs = append(scs, cc)
	}
	return vc, scs
}
