package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
	"github.com/stateroom-go/stateroom/internal/routines"
	"github.com/stateroom-go/stateroom/store"
)

// Options configures a Node. Either Listen (embedded NATS) or NATSURL
// (external NATS) is required.
type Options struct {
	// Node names this node in the cluster: 1 to 64 of A-Z, a-z, 0-9, '-'
	// and '_', unique among live nodes.
	Node string

	// Listen is the HOST:PORT the embedded NATS server's cluster routes
	// listen on, and Peers the HOST:PORT of the other nodes' routes. The
	// embedded server keeps dialling peers that do not answer.
	Listen string
	Peers  []string
	// StateDir is where the embedded server keeps JetStream's files
	// (StateDir/nats); required with Listen.
	StateDir string
	// ClusterName is the NATS cluster's name, the same on every node.
	// Default "stateroom".
	ClusterName string

	// NATSURL joins an existing NATS cluster (with JetStream) instead of
	// embedding a server, e.g. "nats://10.0.0.5:4222".
	NATSURL string

	// Replicas is how many copies JetStream keeps of the ownership and
	// state buckets. Default: 3 when there are 2 or more Peers (or, with
	// NATSURL, when the NATS cluster has 3 or more servers), else 1.
	Replicas int

	// LeaseTTL is how long a node's rooms stay its own after its last
	// lease renewal; it renews every LeaseTTL/5 and stops serving its rooms
	// at 2/3 of it without a renewal. Default 15 s (at least 3 s: NATS
	// leader elections take seconds).
	LeaseTTL time.Duration

	// Logger gets the node's log lines. Default slog.Default().
	Logger *slog.Logger
}

// DefaultLeaseTTL is the default Options.LeaseTTL.
const DefaultLeaseTTL = 15 * time.Second

// Node is this process's membership of a cluster: its NATS connection (and
// embedded server), its lease, the directory of room owners, the room
// state store, and the forwarding of rooms owned elsewhere.
type Node struct {
	opts  Options
	log   *slog.Logger
	srv   *natsserver.Server // nil with NATSURL
	emb   embeddedOptions
	nc    *nats.Conn
	js    jetstream.JetStream
	dir   *directory
	store *Store
	own   *routines.Owner
	m     *metrics

	local    rooms.Placement // set by Bind: this node's rooms
	closeAll func(code stateroom.CloseCode, reason string) int
	nextLink atomic.Uint64
	gw       gatewaySide
	owner    ownerSide
	fenced   atomic.Bool
	// gate is held for reading by each join from its fence check until
	// the room is joined, and for writing by fence: a room created by a
	// join that raced the fence is closed with the others.
	gate       sync.RWMutex
	onFence    func()            // tests: called when the node fences itself
	onTakeover func(room string) // tests: called when it takes a room over
	statusMu   sync.Mutex
	statusErr  error
}

// Start joins the cluster: it starts the embedded NATS server (or connects
// to NATSURL), waits until JetStream answers (bounded by ctx), opens the
// buckets and registers the node's lease. Call Bind before serving.
func Start(ctx context.Context, o Options) (*Node, error) {
	if err := checkNodeName(o.Node); err != nil {
		return nil, err
	}
	o.LeaseTTL = cmp.Or(o.LeaseTTL, DefaultLeaseTTL)
	o.ClusterName = cmp.Or(o.ClusterName, "stateroom")
	if o.Replicas == 0 && o.NATSURL == "" {
		o.Replicas = 1
		if len(o.Peers) >= 2 {
			o.Replicas = 3
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := &Node{opts: o, log: o.Logger.With("node", o.Node), own: routines.New(), m: newMetrics()}
	// Link numbers start at random so a restarted node's links never meet
	// its predecessor's on an owner.
	var b [8]byte
	rand.Read(b[:])
	n.nextLink.Store(binary.LittleEndian.Uint64(b[:]) >> 1)
	url := o.NATSURL
	switch {
	case o.Listen != "" && o.NATSURL != "":
		return nil, errors.New("cluster: both a cluster listen address and a NATS URL: embed a NATS server (--cluster-listen, --cluster-peer) or join one (--nats), not both")
	case o.Listen != "":
		if o.StateDir == "" {
			return nil, errors.New("cluster: the embedded NATS server needs a state directory for JetStream's files (Options.StateDir, --state-dir)")
		}
		n.emb = embeddedOptions{Node: o.Node, Listen: o.Listen, Peers: o.Peers, StateDir: o.StateDir, Cluster: o.ClusterName}
		srv, err := startEmbedded(n.emb)
		if err != nil {
			return nil, err
		}
		n.srv, url = srv, srv.ClientURL()
		n.emb.ClientPort = srv.Addr().(*net.TCPAddr).Port
	case o.NATSURL == "":
		return nil, errors.New("cluster: no NATS: give --cluster-listen (and --cluster-peer for each other node) to embed a NATS server, or --nats URL to join one")
	}
	fail := func(err error) (*Node, error) {
		n.own.Close(nil, nil) // the lease's loops, once started
		<-n.own.Done()
		n.closeNATS()
		return nil, err
	}
	copts := []nats.Option{nats.Name("stateroom " + o.Node), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		// Nothing is kept to send once reconnected: a publish while
		// disconnected fails at once. Kept, a lease renewal sent before
		// the fence deadline landed after the reconnect, long after its
		// caller gave up: it revived the fenced node's old lease, which
		// the node then had to wait out (up to one more TTL) before it
		// could register again (TestExternalNATSGoesAndComesBack). The
		// cost: a forwarded client that sends while the node is
		// disconnected is closed with 1013 at once (it reconnects), as
		// it would be anyway at the first frame its node missed.
		nats.ReconnectBufSize(-1),
	}
	if n.srv != nil {
		// A node talks to the cluster through its own server only: cut off
		// from its peers, it must notice (and fence itself), not quietly
		// reach the cluster through a peer's server it learnt of.
		copts = append(copts, nats.IgnoreDiscoveredServers())
	}
	nc, err := nats.Connect(url, copts...)
	if err != nil {
		return fail(fmt.Errorf("cluster: connect to NATS at %s: %w", url, err))
	}
	n.nc = nc
	if n.opts.Replicas == 0 { // external NATS: as many copies as it has servers, up to 3
		n.opts.Replicas = min(3, max(1, len(nc.Servers())))
		if n.opts.Replicas == 2 {
			n.opts.Replicas = 1 // 2 of 2 is no safer than 1 and stops at the first failure
		}
	}
	if n.js, err = jetstream.New(nc); err != nil {
		return fail(err)
	}
	// JetStream answers once its leaders are elected: wait (bounded by ctx).
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.js.AccountInfo(c)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("cluster: JetStream did not answer (%v): are enough peers up for a quorum (%d of %d)? %w", err, len(o.Peers)/2+1, len(o.Peers)+1, ctx.Err()))
		}
		n.log.Info("waiting for the cluster's JetStream", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if n.dir, err = openDirectory(ctx, n.js, o.Node, o.LeaseTTL, n.opts.Replicas); err != nil {
		return fail(err)
	}
	// The lease is renewed from now on, not from Bind: opening the store
	// and building the server take a while (leader elections), and a node
	// that let its lease go past the fence deadline may not renew it, only
	// wait for it to expire and register again (directory.renew).
	n.own.Go(n.renewLoop)
	n.own.Go(n.fenceLoop)
	if n.store, err = NewStore(ctx, n.js, StoreOptions{Replicas: n.opts.Replicas, Timeout: o.LeaseTTL / 4}); err != nil {
		return fail(err)
	}
	return n, nil
}

// Store is the node's room state store, replicated by JetStream. A server
// with this node as its Options.Cluster saves rooms to it unless
// Options.Store says otherwise.
func (n *Node) Store() *Store { return n.store }

// StateStore is Store as a store.Store (server.Cluster).
func (n *Node) StateStore() store.Store { return n.store }

// Collectors are the node's Prometheus metrics (server.Cluster): the
// server registers them with its own.
func (n *Node) Collectors() []prometheus.Collector { return n.m.collectors() }

// ClusterStatus is Status for the server's /status (server.Cluster).
func (n *Node) ClusterStatus() (bool, any) {
	st := n.Status()
	return st.InCluster, st
}

// Bind makes local, this node's room runtime, serve the rooms this node
// owns, and starts the rest of the node's work (its lease is renewed from Start on): watching other nodes'
// leases, and forwarding. closeAll closes every local room (fencing). It
// returns the placement the transport joins rooms through.
func (n *Node) Bind(local rooms.Placement, closeAll func(code stateroom.CloseCode, reason string) int) (rooms.Placement, error) {
	n.gate.Lock() // a fence, which may run from Start on, sees the node bound or not
	n.local, n.closeAll = local, closeAll
	n.gw.init(n)
	n.owner.init(n)
	if rt, ok := local.(endingRuntime); ok {
		n.owner.runtime = rt
		rt.OnEnded(n.owner.ended)
	}
	n.gate.Unlock()
	// Two subscriptions: traffic for the rooms this node owns, and frames
	// for the clients it forwards, so that a busy room never holds up the
	// frames of another node's rooms.
	for _, sub := range []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{ownerSubject(n.opts.Node), n.receiveAsOwner},
		{gatewaySubject(n.opts.Node), n.receiveAsGateway},
	} {
		s, err := n.nc.Subscribe(sub.subject, sub.handle)
		if err != nil {
			return nil, fmt.Errorf("cluster: subscribe to %s: %w", sub.subject, err)
		}
		s.SetPendingLimits(-1, 256<<20)
	}
	if err := n.nc.Flush(); err != nil {
		return nil, err
	}
	if err := n.watchLeases(); err != nil {
		return nil, err
	}
	n.own.Go(n.checkLoop)
	return placement{n}, nil
}

// The subjects of a node: what gateways send to the rooms it owns, and
// what owners send to the clients it forwards.
func ownerSubject(node string) string   { return "stateroom.node." + node + ".own" }
func gatewaySubject(node string) string { return "stateroom.node." + node + ".gw" }

// receiveAsOwner handles a gateway's message for a room this node owns.
func (n *Node) receiveAsOwner(msg *nats.Msg) {
	m, err := decodeMessage(msg.Data)
	if err != nil || m.op == opFrames || m.op == opClose {
		n.log.Warn("dropped a malformed message from another node", "err", err, "bytes", len(msg.Data))
		return
	}
	n.owner.receive(m, msg)
}

// receiveAsGateway handles an owner's frames and closes for the clients
// this node forwards.
func (n *Node) receiveAsGateway(msg *nats.Msg) {
	m, err := decodeMessage(msg.Data)
	if err != nil || (m.op != opFrames && m.op != opClose) {
		n.log.Warn("dropped a malformed message from another node", "err", err, "bytes", len(msg.Data))
		return
	}
	n.gw.receive(m)
}

// renewLoop renews the lease every TTL/5. Each renewal's deadline ends at
// the fence deadline at the latest, so a renewal still in flight then
// cannot count. A renewal that finds the lease expired (the node went a
// whole TTL without renewing, so another node may hold its rooms) fences
// the node before it registers a new incarnation and serves again.
func (n *Node) renewLoop() {
	t := time.NewTimer(n.opts.LeaseTTL / 5)
	defer t.Stop()
	lapsing := false // logged that the node waits for its old lease
	for {
		select {
		case <-n.own.Quit():
			return
		case <-t.C:
		}
		// A renewal answered before the fence deadline reached the stream
		// before it, TTL/3 ahead of the old entry's expiry, so it may take
		// until then; past the deadline, renew only looks at the lease.
		wait := min(n.opts.LeaseTTL/3, time.Until(n.dir.fenceDeadline()))
		if wait <= 0 {
			wait = n.opts.LeaseTTL / 5
		}
		c, cancel := context.WithTimeout(context.Background(), wait)
		err := n.dir.renew(c)
		cancel()
		next := n.opts.LeaseTTL / 5
		switch {
		case errors.Is(err, errLeaseExpired):
			n.m.renewals.WithLabelValues("expired").Inc()
			n.fence("the node's lease had expired")
			n.log.Warn("the node's lease had expired; it registered again, and its rooms may have moved", "incarnation", n.dir.incarnation())
			err = nil
		case errors.Is(err, errLeaseLapsing):
			// Look again soon: the node serves again only once it has
			// seen its old lease gone and registered after it, and each
			// tick it waits for is a tick its rooms' clients wait too
			// (a survivor whose renewals failed during a leader election
			// lapses as well).
			n.m.renewals.WithLabelValues("lapsed").Inc()
			next = min(next, lapsedPoll)
		case err != nil:
			n.m.renewals.WithLabelValues("failed").Inc()
		default:
			n.m.renewals.WithLabelValues("ok").Inc()
		}
		t.Reset(next)
		if err != nil {
			if !errors.Is(err, errLeaseLapsing) || !lapsing {
				n.log.Warn("lease renewal failed", "err", err)
			}
			lapsing = errors.Is(err, errLeaseLapsing)
			n.setStatus(err)
			continue
		}
		lapsing = false
		n.setStatus(nil)
		n.unfence()
	}
}

// lapsedPoll is how often a lapsed node looks whether its old lease is
// gone (see directory.renew).
const lapsedPoll = 250 * time.Millisecond

// opContext bounds a directory or store operation done while holding the
// node's gate (a join, a release): TTL/5, and never past the fence
// deadline, so that a fence waiting for the gate gets it by then, before
// any other node may take this node's rooms over (a chain of such
// operations, each waiting for the room gate of the one before, would
// otherwise hold the fence past the lease's expiry).
func (n *Node) opContext() (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(n.opts.LeaseTTL / 5)
	if fence := n.dir.fenceDeadline(); fence.Before(deadline) {
		deadline = fence
	}
	return context.WithDeadline(context.Background(), deadline)
}

// fenceLoop fences the node when its fence deadline passes without a
// renewal. It runs apart from the renewals and the owner checks, whose
// requests may block until their deadlines, so the fence is never late.
func (n *Node) fenceLoop() {
	for {
		d := time.Until(n.dir.fenceDeadline())
		if d <= 0 {
			n.fence("lease not renewed in time")
			d = n.opts.LeaseTTL / 20 // until a renewal moves the deadline
		}
		t := time.NewTimer(d)
		select {
		case <-n.own.Quit():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// checkLoop asks, every TTL/5, whether the nodes this node forwards to
// still hold their leases (see gatewaySide.checkOwners).
func (n *Node) checkLoop() {
	tick := time.NewTicker(n.opts.LeaseTTL / 5)
	defer tick.Stop()
	for {
		select {
		case <-n.own.Quit():
			return
		case <-tick.C:
		}
		c, cancel := context.WithTimeout(context.Background(), n.opts.LeaseTTL/5)
		n.gw.checkOwners(c)
		cancel()
	}
}

// fence stops serving: joins are refused from now on, joins in progress
// finish first (the gate), then every local room and every forwarded
// client is closed with 1012. Later calls, until unfence, do nothing.
func (n *Node) fence(why string) {
	if !n.fenced.CompareAndSwap(false, true) {
		return
	}
	n.gate.Lock() // joins in progress end, or see fenced
	defer n.gate.Unlock()
	n.owner.forgetRooms()
	n.m.fenced.Set(1)
	if n.onFence != nil {
		n.onFence()
	}
	const reason = "this node lost contact with the cluster; reconnect"
	closed := 0
	if n.closeAll != nil { // bound: see Bind
		closed = n.closeAll(stateroom.CloseServiceRestart, reason)
	}
	n.gw.closeAll(stateroom.CloseServiceRestart, reason)
	n.log.Error(why+": stopped serving this node's rooms so that another node can take them over", "rooms", closed)
}

// unfence serves again after a successful renewal.
func (n *Node) unfence() {
	if n.fenced.Load() && !n.dir.mustFence(time.Now()) && n.fenced.CompareAndSwap(true, false) {
		n.m.fenced.Set(0)
		n.log.Info("lease renewed: serving rooms again")
	}
}

func (n *Node) setStatus(err error) {
	n.statusMu.Lock()
	n.statusErr = err
	n.statusMu.Unlock()
}

// Status describes the node's place in the cluster, for /status.
type Status struct {
	Node      string `json:"node"`
	InCluster bool   `json:"in_cluster"`
	Fenced    bool   `json:"fenced"`
	Error     string `json:"error,omitempty"`
}

// Status says whether the node is in the cluster (its NATS connection is up
// and its lease renewed) or fenced.
func (n *Node) Status() Status {
	n.statusMu.Lock()
	err := n.statusErr
	n.statusMu.Unlock()
	s := Status{Node: n.opts.Node, Fenced: n.fenced.Load()}
	s.InCluster = n.nc.IsConnected() && err == nil && !s.Fenced
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// Close leaves the cluster: it stops forwarding, resigns the node's lease
// (so its rooms can be taken over at once; call it after the server saved
// its rooms) and closes NATS. It waits for the node's goroutines.
func (n *Node) Close() error {
	n.own.Close(nil, nil)
	<-n.own.Done()
	var err error
	if n.dir != nil {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = n.dir.resign(c)
		cancel()
	}
	if n.store != nil {
		n.store.Close()
	}
	n.closeNATS()
	return err
}

func (n *Node) closeNATS() {
	if n.nc != nil {
		n.nc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// watchLeases follows the other nodes' leases: when one ends (expired or
// resigned) or its node restarts as a new incarnation, the clients this
// node forwards to its rooms are closed (they reconnect and find the rooms
// taken over), and the clients it held here for our rooms leave.
func (n *Node) watchLeases() error {
	// The watch's context ends with the node: nats.go keeps a goroutine
	// per watch until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	w, err := n.dir.nodes.WatchAll(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("cluster: watch the nodes' leases: %w", err)
	}
	n.own.Go(func() {
		defer cancel()
		defer w.Stop()
		live := map[string]string{} // node -> incarnation
		for {
			select {
			case <-n.own.Quit():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Key() == n.opts.Node {
					continue
				}
				node, was := e.Key(), live[e.Key()]
				now := ""
				if e.Operation() == jetstream.KeyValuePut {
					now = string(e.Value())
				}
				if now == was {
					continue
				}
				if now == "" {
					delete(live, node)
				} else {
					live[node] = now
				}
				if was != "" {
					n.log.Info("a node left the cluster", "gone", node, "incarnation", was)
					n.gw.ownerGone(owner{node, was})
					n.owner.gatewayGone(node, was)
				}
			}
		}
	})
	return nil
}
