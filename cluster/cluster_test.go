package cluster

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testCluster is n real nats-servers with JetStream, routed to each other on
// loopback as the nodes of a cluster embed them.
type testCluster struct {
	servers []*natsserver.Server
	js      []jetstream.JetStream
}

func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	c := &testCluster{}
	addrs := freeAddrs(t, n)
	for i := range n {
		o := embeddedOptions{
			Node:     fmt.Sprintf("n%d", i+1),
			Listen:   addrs[i],
			StateDir: t.TempDir(),
			Cluster:  "test",
		}
		for j, a := range addrs {
			if j != i {
				o.Peers = append(o.Peers, a)
			}
		}
		s, err := startEmbedded(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		c.servers = append(c.servers, s)
	}
	for _, s := range c.servers {
		nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		c.js = append(c.js, js)
	}
	// JetStream is usable once its meta leader is elected: wait for it
	// (bounded), through every node.
	deadline := time.Now().Add(30 * time.Second)
	for _, js := range c.js {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := js.AccountInfo(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("JetStream of the %d-node cluster not ready after 30s: %v", n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

// freeAddrs returns n loopback addresses whose ports were free a moment ago:
// the nodes of a cluster must know each other's route addresses up front.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

func TestThreeNodeClusterForms(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	s, err := NewStore(ctx, c.js[0], StoreOptions{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rev, err := s.Save(ctx, "room", []byte("replicated"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Read through another node.
	s2, err := NewStore(ctx, c.js[2], StoreOptions{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rec, err := s2.Load(ctx, "room")
	if err != nil || string(rec.Data) != "replicated" || rec.Revision != rev {
		t.Fatalf("Load through node 3 = %+v, %v; want the record saved through node 1", rec, err)
	}
}
