package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stateroom-go/stateroom/cluster"
)

// ClusterFlags are serve's flags for running as a node of a cluster.
type ClusterFlags struct {
	Node     string
	Listen   string
	Peers    []string
	NATS     string
	LeaseTTL time.Duration
	// Startup bounds the wait for the cluster's JetStream (a quorum of
	// peers) at start.
	Startup time.Duration
}

func (f *ClusterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Node, "node", "", "run as the node NAME of a cluster (needs --cluster-listen and --cluster-peer, or --nats)")
	fs.StringVar(&f.Listen, "cluster-listen", "", "HOST:PORT where this node's embedded NATS server listens for its peers")
	fs.StringArrayVar(&f.Peers, "cluster-peer", nil, "HOST:PORT of another node's --cluster-listen (repeat for each node)")
	fs.StringVar(&f.NATS, "nats", "", "join an existing NATS cluster with JetStream at this URL instead of embedding a server")
	fs.DurationVar(&f.LeaseTTL, "lease-ttl", cluster.DefaultLeaseTTL, "how long a dead node's rooms wait before another node takes them over (at least 3s)")
	fs.DurationVar(&f.Startup, "cluster-startup-timeout", 2*time.Minute, "how long to wait at start for a quorum of the cluster's nodes")
}

// enabled reports whether serve runs as a cluster node.
func (f *ClusterFlags) enabled() bool {
	return f.Node != "" || f.Listen != "" || len(f.Peers) > 0 || f.NATS != ""
}

// validate checks the cluster flags together, with what to do.
func (f *ClusterFlags) validate(noState bool) error {
	if !f.enabled() {
		return nil
	}
	switch {
	case f.Node == "":
		return errors.New("--cluster-listen, --cluster-peer and --nats need --node NAME, this node's name in the cluster (unique, such as its host name)")
	case f.Listen == "" && f.NATS == "":
		return fmt.Errorf("--node %s needs --cluster-listen HOST:PORT (with --cluster-peer for each other node) to embed NATS, or --nats URL to join a NATS cluster", f.Node)
	case f.Listen != "" && f.NATS != "":
		return errors.New("--cluster-listen and --nats contradict each other: embed a NATS server (--cluster-listen, --cluster-peer) or join one (--nats), not both")
	case f.NATS != "" && len(f.Peers) > 0:
		return errors.New("--cluster-peer is for the embedded NATS server (--cluster-listen); with --nats, the NATS cluster knows its servers")
	case f.Listen != "" && noState:
		return errors.New("--no-state and --cluster-listen contradict each other: the embedded NATS server keeps the cluster's room state under --state-dir")
	case f.LeaseTTL < 3*time.Second:
		return fmt.Errorf("--lease-ttl %v is too short: NATS leader elections take seconds; use at least 3s (default %v)", f.LeaseTTL, cluster.DefaultLeaseTTL)
	case f.Startup <= 0:
		return fmt.Errorf("--cluster-startup-timeout %v must be a positive duration, such as 2m", f.Startup)
	}
	for _, p := range f.Peers {
		if !strings.Contains(p, ":") {
			return fmt.Errorf("--cluster-peer %q: give HOST:PORT, another node's --cluster-listen", p)
		}
	}
	return nil
}

// start joins the cluster; the node's JetStream files go under stateDir.
func (f *ClusterFlags) start(ctx context.Context, stateDir string, logger *slog.Logger) (*cluster.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, f.Startup)
	defer cancel()
	return cluster.Start(ctx, cluster.Options{
		Node:     f.Node,
		Listen:   f.Listen,
		Peers:    f.Peers,
		StateDir: filepath.Join(stateDir, "cluster-"+f.Node),
		NATSURL:  f.NATS,
		LeaseTTL: f.LeaseTTL,
		Logger:   logger,
	})
}

// note ends the ready line.
func (f *ClusterFlags) note() string {
	if f.NATS != "" {
		return fmt.Sprintf("; node %s of the NATS cluster at %s", f.Node, f.NATS)
	}
	peers := fmt.Sprintf("%d peers", len(f.Peers))
	if len(f.Peers) == 1 {
		peers = "1 peer"
	}
	return fmt.Sprintf("; node %s of a cluster with %s, routes on %s", f.Node, peers, f.Listen)
}
