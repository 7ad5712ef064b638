package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// externalNATS is a nats-server with JetStream that the nodes join by URL
// (Options.NATSURL, `stateroom serve --nats`), as an operator's own NATS
// would be. Its port and store directory are fixed, so that once stopped
// it comes back as the same server, with the same streams, at the same
// address.
type externalNATS struct {
	host     string
	port     int
	storeDir string
	srv      *natsserver.Server
}

// startExternalNATS starts an externalNATS on a loopback port; it stops
// with the test (after the nodes, whose cleanups run first).
func startExternalNATS(t *testing.T) *externalNATS {
	t.Helper()
	host, port, err := splitHostPort(freeAddrs(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	e := &externalNATS{host: host, port: port, storeDir: t.TempDir()}
	e.start(t)
	t.Cleanup(e.stop)
	return e
}

// start starts the server, or starts it again after stop.
func (e *externalNATS) start(t *testing.T) {
	t.Helper()
	// Options of its own each time: nats-server fills in the options it
	// is given.
	s, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "external",
		Host:       e.host,
		Port:       e.port,
		JetStream:  true,
		StoreDir:   e.storeDir,
		MaxPayload: maxPayload,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("the external nats-server did not accept connections on %s:%d within 30s", e.host, e.port)
	}
	e.srv = s
}

// stop shuts the server down: every connection to it drops.
func (e *externalNATS) stop() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		e.srv = nil
	}
}

func (e *externalNATS) url() string { return fmt.Sprintf("nats://%s:%d", e.host, e.port) }

// startExternalNodes starts n nodes that join ext by URL, each with a
// server (see serveNodes).
func startExternalNodes(t *testing.T, ext *externalNATS, n int, ttl time.Duration) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		node, err := Start(ctx, Options{Node: fmt.Sprintf("node%d", i+1), NATSURL: ext.url(), LeaseTTL: ttl, Logger: quiet})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{node: node}
	}
	serveNodes(t, nodes)
	return nodes
}

// statusCode is the HTTP status of tn's /status.
func statusCode(tn *testNode) (int, error) {
	resp, err := http.Get(tn.http.URL + "/status")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// When the external NATS the nodes joined goes away, every node fences
// itself (its clients closed with 1012, joins refused with 503, /status
// 503): no node serves a room without NATS. When NATS comes back on the
// same address with its files, the nodes reconnect and register again,
// and the room comes back on exactly one node with the state saved before
// the outage.
func TestExternalNATSGoesAndComesBack(t *testing.T) {
	const ttl = 5 * time.Second
	const room = "outage"
	ext := startExternalNATS(t)
	nodes := startExternalNodes(t, ext, 3, ttl)

	// A client per node that does not reconnect, so its end shows how the
	// node closed it; and one that does, through another node than the
	// room's first.
	watchers := make([]*client.Conn, len(nodes))
	for i, tn := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := client.Dial(ctx, tn.url(), client.Options{Room: room})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		await(t, c, "v=0", 10*time.Second)
		watchers[i] = c
	}
	rejoiner := dial(t, nodes[1], room)
	await(t, rejoiner, "v=0", 10*time.Second)
	const count = 5
	for i := range count {
		if err := watchers[0].Send(context.Background(), stateroom.Text("inc")); err != nil {
			t.Fatal(err)
		}
		for _, c := range append([]*client.Conn{rejoiner}, watchers...) {
			await(t, c, "v="+strconv.Itoa(i+1), 10*time.Second)
		}
	}
	waitSaved(t, nodes[0], room, count)

	down := time.Now()
	ext.stop()

	// Every node fences itself and closes its clients with 1012.
	fencedAfter := make([]time.Duration, len(nodes))
	waitFor(t, ttl+30*time.Second, "every node fenced after NATS went away", func() (bool, error) {
		all := true
		for i, tn := range nodes {
			if fencedAfter[i] == 0 && tn.node.Status().Fenced {
				fencedAfter[i] = time.Since(down)
			}
			all = all && fencedAfter[i] != 0
		}
		return all, nil
	})
	for i, c := range watchers {
		select {
		case <-c.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("node %d fenced, but its client's connection did not end within 30s", i+1)
		}
		if ce, ok := errors.AsType[*client.CloseError](c.Err()); !ok || ce.Code != stateroom.CloseServiceRestart {
			t.Fatalf("the client of node %d ended with %v; want 1012 (service restart)", i+1, c.Err())
		}
	}
	// No node runs a room, joins are refused with 503, /status says 503.
	waitFor(t, 30*time.Second, "no room running without NATS", func() (bool, error) {
		running := runningRooms(nodes)
		return running == 0, fmt.Errorf("%d rooms running", running)
	})
	for i, tn := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := client.Dial(ctx, tn.url(), client.Options{Room: room})
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("node %d let a client join while NATS was down", i+1)
		}
		if he, ok := errors.AsType[*client.HandshakeError](err); !ok || he.Status != http.StatusServiceUnavailable {
			t.Fatalf("a join through node %d while NATS was down: %v; want 503", i+1, err)
		}
		if code, err := statusCode(tn); code != http.StatusServiceUnavailable {
			t.Fatalf("/status of node %d while NATS was down: %d, %v; want 503", i+1, code, err)
		}
		if st := tn.node.Status(); !st.Fenced || st.InCluster {
			t.Fatalf("node %d serves again while NATS is down: %+v", i+1, st)
		}
	}
	outage := time.Since(down)

	back := time.Now()
	ext.start(t)
	// The nodes reconnect by themselves, register again and serve.
	servingAfter := make([]time.Duration, len(nodes))
	waitFor(t, 3*ttl+60*time.Second, "every node serving again after NATS came back", func() (bool, error) {
		all := true
		for i, tn := range nodes {
			if st := tn.node.Status(); servingAfter[i] == 0 && st.InCluster && !st.Fenced {
				servingAfter[i] = time.Since(back)
			}
			all = all && servingAfter[i] != 0
		}
		return all, nil
	})
	for i, tn := range nodes {
		if code, err := statusCode(tn); code != http.StatusOK {
			t.Fatalf("/status of node %d after NATS came back: %d, %v; want 200", i+1, code, err)
		}
	}
	// The reconnecting client finds the room with its saved count: the
	// first thing it hears is that count, never a lower one.
	want := "v=" + strconv.Itoa(count)
	select {
	case m, ok := <-rejoiner.Messages():
		if !ok {
			t.Fatalf("the reconnecting client stopped: %v", rejoiner.Err())
		}
		if m.String() != want {
			t.Fatalf("the reconnecting client found the room with %q; want %q, the count saved before the outage", m.String(), want)
		}
	case <-time.After(3*ttl + 60*time.Second):
		t.Fatal("the reconnecting client did not find the room again")
	}
	roomBack := time.Since(back)
	// New clients through every node find the same room, on one node.
	cs := []*client.Conn{rejoiner}
	for _, tn := range nodes {
		c := dial(t, tn, room)
		await(t, c, want, 30*time.Second)
		cs = append(cs, c)
	}
	if err := cs[len(cs)-1].Send(context.Background(), stateroom.Text("inc")); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		await(t, c, "v="+strconv.Itoa(count+1), 10*time.Second)
	}
	running := runningRooms(nodes)
	if running != 1 || owning(nodes, room) == nil {
		t.Fatalf("%d rooms run over the cluster after NATS came back (owner %v); want 1", running, owning(nodes, room))
	}
	waitSaved(t, nodes[2], room, count+1)
	t.Logf("lease TTL %v: nodes fenced %v after NATS went away; NATS down %v; nodes serving again %v after it came back, the room back for its reconnecting client after %v",
		ttl, roundAll(fencedAfter), outage.Round(time.Millisecond), roundAll(servingAfter), roomBack.Round(time.Millisecond))
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
