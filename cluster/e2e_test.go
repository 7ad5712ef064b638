package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
)

// tally is the service of the end-to-end tests: a number every client sees
// ("v=N" on Connect and after each "inc"), kept in its snapshot.
type tally struct {
	stateroom.BaseService
	n int
}

func (t *tally) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text("v="+strconv.Itoa(t.n)))
}

func (t *tally) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if strings.HasPrefix(ev.Payload.String(), "ping") { // echo to the sender
		room.Send(stateroom.To(ev.Client), ev.Payload)
		return
	}
	if ev.Payload.String() == "inc" {
		t.n++
		room.Send(stateroom.Everyone, stateroom.Text("v="+strconv.Itoa(t.n)))
	}
}

func (t *tally) Snapshot() ([]byte, error) { return fmt.Appendf(nil, "tally=%d;", t.n), nil }

func (t *tally) Restore(b []byte) error {
	_, err := fmt.Sscanf(string(b), "tally=%d;", &t.n)
	return err
}

// quiet is the logger of the nodes and servers of the tests: what they log
// is not asserted, and a failing test says what went wrong.
var quiet = slog.New(slog.DiscardHandler)

// testNode is one node of an end-to-end cluster: a cluster.Node with its
// embedded NATS server, and a Stateroom server over HTTP on loopback.
type testNode struct {
	node *Node
	srv  *server.Server
	http *httptest.Server
	dead bool
}

func (tn *testNode) url() string { return "ws" + strings.TrimPrefix(tn.http.URL, "http") }

// crash stops the node as a dying process would: its NATS server and
// connections go away without resigning its lease, and its clients are cut.
func (tn *testNode) crash() {
	tn.dead = true
	tn.node.own.Close(nil, nil)
	tn.node.closeNATS()
	tn.http.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tn.srv.Shutdown(ctx)
	<-tn.node.own.Done()
}

// startNodes starts n nodes with lease TTL ttl, each with a server; tune,
// if given, adjusts the servers' options.
func startNodes(t testing.TB, n int, ttl time.Duration, tune ...func(*server.Options)) []*testNode {
	t.Helper()
	addrs := freeAddrs(t, n)
	nodes := make([]*testNode, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var peers []string
			for j, a := range addrs {
				if j != i {
					peers = append(peers, a)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			node, err := Start(ctx, Options{
				Node: fmt.Sprintf("node%d", i+1), Listen: addrs[i], Peers: peers,
				StateDir: t.TempDir(), LeaseTTL: ttl, Logger: quiet,
			})
			if err != nil {
				errs <- err
				return
			}
			nodes[i] = &testNode{node: node}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	serveNodes(t, nodes, tune...)
	return nodes
}

// serveNodes gives each started node a server over HTTP on loopback, waits
// until every node is ready, and stops them all (servers, then leases,
// then nodes) when the test ends; tune, if given, adjusts the servers'
// options.
func serveNodes(t testing.TB, nodes []*testNode, tune ...func(*server.Options)) {
	t.Helper()
	for _, tn := range nodes {
		o := server.Options{
			Cluster:            tn.node,
			CheckpointInterval: 20 * time.Millisecond,
			DisableMetrics:     true,
			Logger:             quiet,
			// The benchmarks send as fast as they can.
			MessageRate: server.NoLimit,
		}
		for _, f := range tune {
			f(&o)
		}
		srv, err := server.New(stateroom.New(func(string) *tally { return &tally{} }), o)
		if err != nil {
			t.Fatal(err)
		}
		tn.srv = srv
		tn.http = httptest.NewServer(srv)
	}
	// Ready as an operator would see it on /status: in the cluster and not
	// fenced (a node whose renewals fell behind while the others started
	// waits for its old lease to expire and registers again).
	deadline := time.Now().Add(60 * time.Second)
	for _, tn := range nodes {
		for st := tn.node.Status(); !st.InCluster || st.Fenced; st = tn.node.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("node %s not ready within 60s: %+v", tn.node.opts.Node, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Stop the servers first (their rooms save through the cluster), then
	// resign every lease while the NATS servers still have a quorum, then
	// stop NATS.
	t.Cleanup(func() {
		for _, tn := range nodes {
			if tn.dead {
				continue
			}
			tn.http.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := tn.srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			cancel()
		}
		for _, tn := range nodes {
			if !tn.dead {
				if err := tn.node.dir.resign(context.Background()); err != nil {
					t.Errorf("resign: %v", err)
				}
			}
		}
		for _, tn := range nodes {
			if !tn.dead {
				tn.node.Close()
			}
		}
	})
}

func dial(t testing.TB, tn *testNode, room string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, tn.url(), client.Options{Room: room, Reconnect: true, MinDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// await reads c's messages until one equals want.
func await(t testing.TB, c *client.Conn, want string, within time.Duration) {
	t.Helper()
	if err := awaitErr(c, want, within); err != nil {
		t.Fatal(err)
	}
}

func awaitErr(c *client.Conn, want string, within time.Duration) error {
	timeout := time.After(within)
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return fmt.Errorf("connection ended (%v) before %q", c.Err(), want)
			}
			if m.String() == want {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no %q within %v", want, within)
		}
	}
}

// owning returns the node that runs room.
// runningRooms counts the rooms the nodes run, over the cluster.
func runningRooms(nodes []*testNode) int {
	running := 0
	for _, tn := range nodes {
		running += len(tn.srv.Rooms())
	}
	return running
}

func owning(nodes []*testNode, room string) *testNode {
	for _, tn := range nodes {
		if tn.dead {
			continue
		}
		if tn.node.owner.owned(room) != nil {
			return tn
		}
	}
	return nil
}

// One room reached through every node is one room: a message through one
// node reaches the clients of all three, and the room runs on one node.
func TestOneRoomThroughEveryNode(t *testing.T) {
	nodes := startNodes(t, 3, 5*time.Second)
	var cs []*client.Conn
	for _, tn := range nodes {
		c := dial(t, tn, "lobby")
		await(t, c, "v=0", 10*time.Second)
		cs = append(cs, c)
	}
	for i, c := range cs {
		if err := c.Send(context.Background(), stateroom.Text("inc")); err != nil {
			t.Fatal(err)
		}
		for _, other := range cs {
			await(t, other, "v="+strconv.Itoa(i+1), 10*time.Second)
		}
	}
	if running := runningRooms(nodes); running != 1 {
		t.Fatalf("%d rooms run over the cluster; want 1", running)
	}
	owner := owning(nodes, "lobby")
	for _, tn := range nodes {
		if tn != owner {
			if got := testutil.ToFloat64(tn.node.m.forwardedMessages); got != 1 {
				t.Errorf("a gateway forwarded %v messages of its client; want 1", got)
			}
		}
	}
	// A room id that no NATS subject or key could hold as it is: ids
	// travel in payloads and keys hold them in base64url.
	odd := "a.b *>/é\x00" + strings.Repeat("x", 240)
	c1, c2 := dial(t, nodes[1], odd), dial(t, nodes[2], odd)
	await(t, c1, "v=0", 10*time.Second)
	await(t, c2, "v=0", 10*time.Second)
	c1.Send(context.Background(), stateroom.Text("inc"))
	await(t, c2, "v=1", 10*time.Second)
	// Two of the three clients are forwarded: each node that is not the
	// owner delivered the counts to its client.
	for _, tn := range nodes {
		frames := testutil.ToFloat64(tn.node.m.forwardedFrames)
		msgs := testutil.ToFloat64(tn.node.m.forwardedMessages)
		if tn == owner && (frames != 0 || msgs != 0) {
			t.Errorf("the owner counts %v forwarded frames and %v messages; want 0", frames, msgs)
		}
		if tn != owner && (frames < 4 || msgs < 1) {
			t.Errorf("a gateway counts %v forwarded frames and %v messages; want at least 4 (v=0..3) and 1", frames, msgs)
		}
	}
}

// When the node that owns a room dies, the room comes back on a survivor
// with its last saved state, and the survivors' clients find it again.
func TestFailoverKeepsState(t *testing.T) {
	// NATS elects new stream leaders after the crash; the survivors must
	// keep their leases meanwhile (a few seconds).
	const ttl = 10 * time.Second
	nodes := startNodes(t, 3, ttl)
	var cs []*client.Conn
	for _, tn := range nodes {
		c := dial(t, tn, "game")
		await(t, c, "v=0", 10*time.Second)
		cs = append(cs, c)
	}
	for i := range 5 {
		cs[0].Send(context.Background(), stateroom.Text("inc"))
		for _, c := range cs {
			await(t, c, "v="+strconv.Itoa(i+1), 10*time.Second)
		}
	}
	victim := owning(nodes, "game")
	if victim == nil {
		t.Fatal("no node owns the room")
	}
	// Wait for the checkpoint of 5 to reach the replicated store.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := victim.node.Store().Load(context.Background(), "game")
		if err == nil && strings.Contains(string(rec.Data), "tally=5;") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room's state was not saved: %+v, %v", rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var survivors []*client.Conn
	for i, tn := range nodes {
		if tn != victim {
			survivors = append(survivors, cs[i])
		}
	}
	crashed := time.Now()
	victim.crash()
	// The survivors' clients are closed with 1012 when the lease expires,
	// reconnect, and find the room on a survivor with its state.
	for _, c := range survivors {
		await(t, c, "v=5", ttl+30*time.Second)
	}
	t.Logf("room back with its state %v after the owner crashed (lease TTL %v)", time.Since(crashed).Round(time.Millisecond), ttl)
	if owner := owning(nodes, "game"); owner == nil || owner == victim {
		t.Fatalf("room owner after failover: %v", owner)
	}
	survivors[0].Send(context.Background(), stateroom.Text("inc"))
	for _, c := range survivors {
		await(t, c, "v=6", 10*time.Second)
	}
}
