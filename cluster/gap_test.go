package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// A frame that arrives out of sequence (NATS drops messages for a slow
// subscriber rather than blocking) closes the client with 1013, so that it
// reconnects, rather than handing it frames out of order.
func TestGapClosesWith1013(t *testing.T) {
	nodes := startNodes(t, 3, DefaultLeaseTTL)
	first := dial(t, nodes[0], "gappy")
	await(t, first, "v=0", 10*time.Second)
	owner := owning(nodes, "gappy")
	var gw *testNode
	for _, tn := range nodes {
		if tn != owner {
			gw = tn
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No reconnect: the test reads the close.
	c, err := client.Dial(ctx, gw.url(), client.Options{Room: "gappy"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	await(t, c, "v=0", 10*time.Second)
	gw.node.gw.mu.Lock()
	var link uint64
	var seq uint64
	for l, h := range gw.node.gw.links {
		link = l
		h.mu.Lock()
		seq = h.seqIn
		h.mu.Unlock()
	}
	gw.node.gw.mu.Unlock()
	// Frame seq+2: seq+1 was "lost".
	frame := encodeMessage(&message{op: opFrames, frames: []delivery{{link, seq + 2, []byte{0x81, 3, 'b', 'a', 'd'}}}})
	if err := owner.node.nc.Publish(gatewaySubject(gw.node.opts.Node), frame); err != nil {
		t.Fatal(err)
	}
	for m := range c.Messages() {
		if m.String() == "bad" {
			t.Fatal("a frame after a gap was delivered")
		}
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != stateroom.CloseTryAgainLater {
		t.Fatalf("client ended with %v; want a close with 1013", c.Err())
	}
	if got := testutil.ToFloat64(gw.node.m.gaps); got != 1 {
		t.Errorf("gaps counted: %v; want 1", got)
	}
}
