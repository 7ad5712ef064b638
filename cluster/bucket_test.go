package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Nodes starting together open the directory's buckets at once: one
// creates each bucket, the others bind to it, none waits for its deadline.
func TestNodesOpenBucketsTogether(t *testing.T) {
	c := startCluster(t, 3)
	errs := make(chan error, 3)
	for i, js := range c.js {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := openDirectory(ctx, js, fmt.Sprintf("n%d", i), 5*time.Second, 3)
			if err != nil {
				err = fmt.Errorf("node %d after %v: %w", i, time.Since(start), err)
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// Leases are read through the stream's leader, never a lagging replica.
	st, err := c.js[0].Stream(context.Background(), "KV_"+nodesBucket)
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().Config.AllowDirect {
		t.Error("the leases bucket allows direct (replica) reads")
	}
}

// A node whose peers are down does not serve rooms on its own (that would
// make a second owner in a partition): Start waits for a quorum, bounded by
// its context, and then says what is missing.
func TestStartWithoutQuorumSaysWhy(t *testing.T) {
	addrs := freeAddrs(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := Start(ctx, Options{Node: "alone", Listen: addrs[0], Peers: addrs[1:], StateDir: t.TempDir(), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("Start with both peers down: %v; want an error about the quorum", err)
	}
}

func TestStartOptionsChecked(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{
		{Node: "a b", Listen: "127.0.0.1:0", StateDir: "x"},
		{Node: "a", Listen: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:4222", StateDir: "x"},
		{Node: "a"},
		{Node: "a", Listen: "127.0.0.1:0"},
		{Node: "a", Listen: "nonsense", StateDir: "x"},
	} {
		if _, err := Start(ctx, o); err == nil {
			t.Errorf("Start(%+v) succeeded; want an error", o)
		}
	}
}
