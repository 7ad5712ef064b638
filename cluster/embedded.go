package cluster

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// embeddedOptions configures the nats-server a node embeds.
type embeddedOptions struct {
	Node     string   // server name
	Listen   string   // HOST:PORT of the cluster routes (port 0: any)
	Peers    []string // HOST:PORT of other nodes' routes
	StateDir string   // JetStream files go to StateDir/jetstream
	Cluster  string   // cluster name, the same on every node
	// ClientPort is the loopback port the node's own NATS connection uses;
	// 0 picks one (a restarted server reuses its predecessor's, so the
	// connection finds it again).
	ClientPort int
}

// maxPayload is the largest message the embedded servers carry: a room's
// snapshot must fit in one (NATS's default is 1 MiB).
const maxPayload = 8 << 20

// startEmbedded starts a nats-server with JetStream whose client port is a
// loopback port of its own and whose routes listen on o.Listen and dial
// o.Peers (retrying until they answer). It returns once the server accepts
// connections; JetStream may still be electing its leaders.
func startEmbedded(o embeddedOptions) (*natsserver.Server, error) {
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: --cluster-listen %q: %w", o.Listen, err)
	}
	var routes []*url.URL
	for _, p := range o.Peers {
		if _, _, err := splitHostPort(p); err != nil {
			return nil, fmt.Errorf("cluster: --cluster-peer %q: %w", p, err)
		}
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: p})
	}
	opts := &natsserver.Options{
		ServerName: o.Node,
		Host:       "127.0.0.1",
		Port:       cmp.Or(o.ClientPort, natsserver.RANDOM_PORT),
		JetStream:  true,
		StoreDir:   filepath.Join(o.StateDir, "nats"), // nats-server adds /jetstream,
		MaxPayload: maxPayload,
		NoSigs:     true,
		NoLog:      true,
		Cluster: natsserver.ClusterOpts{
			Name: o.Cluster,
			Host: host,
			Port: port,
		},
		Routes: routes,
	}
	if len(routes) == 0 {
		// A node without peers is a cluster of one: JetStream refuses
		// clustered mode without routes.
		opts.Cluster = natsserver.ClusterOpts{}
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: start the embedded NATS server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("cluster: the embedded NATS server did not start within 30s (is --cluster-listen %s free?)", o.Listen)
	}
	return s, nil
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("want HOST:PORT: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return host, port, nil
}
