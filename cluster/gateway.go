package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
)

// placement is the cluster's rooms.Placement: a room this node owns is
// joined locally, any other is forwarded to its owner.
type placement struct{ n *Node }

// errUnavailable refuses a join the cluster cannot place now (no quorum, a
// fenced node, an owner that does not answer): the transport answers 503.
func errUnavailable(room string, err error) error {
	return fmt.Errorf("%w (cluster: room %q: %v)", rooms.ErrUnavailable, room, err)
}

func (p placement) Join(req rooms.JoinRequest) (rooms.Handle, error) {
	n := p.n
	n.gate.RLock() // see Node.gate
	defer n.gate.RUnlock()
	if n.fenced.Load() {
		return nil, errUnavailable(req.Room, errFenced)
	}
	var lastErr error
	for range 3 {
		unlock := n.owner.lockRoom(req.Room, false) // see roomGate
		// A fence that began while this waited for the room waits for
		// the gate.
		if n.fenced.Load() {
			unlock()
			return nil, errUnavailable(req.Room, errFenced)
		}
		ctx, cancel := n.opContext()
		cl, err := n.dir.claim(ctx, req.Room)
		if err == nil && cl.Mine {
			err = n.owner.adopt(ctx, req.Room, cl)
		}
		cancel()
		if err != nil {
			unlock()
			return nil, errUnavailable(req.Room, err)
		}
		if cl.Mine {
			defer unlock()
			return n.local.Join(req)
		}
		unlock()
		h, err := n.gw.join(cl.Owner, req)
		if errors.Is(err, errNotOwner) {
			lastErr = err
			continue // the room moved while we looked: look again
		}
		return h, err
	}
	return nil, errUnavailable(req.Room, lastErr)
}

// errNotOwner is a remote join refused because the node asked no longer
// owns the room.
var errNotOwner = errors.New("the node asked no longer owns the room")

// errMustCharge refuses, on the owner, a remote join that would create
// the room before the gateway charged its client for it.
var errMustCharge = errors.New("the join would create the room: the client's node must charge its creation first")

// gatewaySide holds the links of this node's clients to rooms owned
// elsewhere.
type gatewaySide struct {
	n     *Node
	mu    sync.Mutex
	links map[uint64]*remoteHandle

	// Used by receive only (on the gateway subscription's goroutine),
	// kept from one message to the next.
	linkIndex map[uint64]int
	nth       []int
	starts    []int
	sorted    []delivery
}

func (g *gatewaySide) init(n *Node) {
	g.n, g.links, g.linkIndex = n, map[uint64]*remoteHandle{}, map[uint64]int{}
}

// requestTimeout bounds a join or connect request to an owner.
const requestTimeout = 5 * time.Second

func (g *gatewaySide) join(o owner, req rooms.JoinRequest) (*remoteHandle, error) {
	// A join that creates the room is charged to its client (the
	// transport's per-address creation limit, req.Creating) on this node,
	// which has the client's address: the owner refuses to create the
	// room until the gateway says it charged (charge false).
	m := &message{op: opJoin, gateway: g.n.opts.Node, incarnation: g.n.dir.incarnation(), room: req.Room, token: req.Token, charge: req.Creating != nil}
	switch id := req.Identity.(type) {
	case nil:
	case string:
		m.idKind, m.identity = identityString, []byte(id)
	default:
		b, err := json.Marshal(id)
		if err != nil {
			return nil, fmt.Errorf("cluster: the identity of a client of room %q must survive JSON to reach the room's node: %w", req.Room, err)
		}
		m.idKind, m.identity = identityJSON, b
	}
	h := &remoteHandle{g: g, owner: o, room: req.Room, link: g.n.nextLink.Add(1)}
	m.link = h.link
	g.mu.Lock()
	g.links[h.link] = h
	g.mu.Unlock()
	reply, err := g.n.nc.Request(ownerSubject(o.Node), encodeMessage(m), requestTimeout)
	if err == nil && m.charge {
		if _, kind, _, derr := decodeReply(reply.Data, 0); derr == nil && kind == errKindMustCharge {
			if err := req.Creating(); err != nil {
				g.forget(h.link)
				return nil, err
			}
			m.charge = false
			reply, err = g.n.nc.Request(ownerSubject(o.Node), encodeMessage(m), requestTimeout)
		}
	}
	if err != nil {
		g.forget(h.link)
		// The owner may still join after the deadline: have it give the
		// place up again (same subject and link, so after the join).
		g.n.nc.Publish(ownerSubject(o.Node), encodeMessage(&message{op: opRelease, gateway: g.n.opts.Node, link: h.link}))
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) {
			return nil, errUnavailable(req.Room, fmt.Errorf("its node %s does not answer: %w", o.Node, err))
		}
		return nil, errUnavailable(req.Room, err)
	}
	if _, kind, msg, err := decodeReply(reply.Data, 0); err != nil || kind != 0 {
		g.forget(h.link)
		if err != nil {
			return nil, errUnavailable(req.Room, err)
		}
		return nil, joinError(kind, msg, req.Room)
	}
	return h, nil
}

// joinError rebuilds on the gateway the error the owner's join returned.
func joinError(kind byte, msg, room string) error {
	switch kind {
	case errKindShuttingDown:
		return fmt.Errorf("%w (on the room's node: %s)", rooms.ErrShuttingDown, msg)
	case errKindTooManyRooms:
		return fmt.Errorf("%w (on the room's node)", rooms.ErrTooManyRooms)
	case errKindRoomFull:
		return rooms.ErrRoomFull
	case errKindRefused:
		return fmt.Errorf("%w: %s", stateroom.ErrRoomRefused, msg)
	case errKindNotOwner:
		return errNotOwner
	case errKindUnavailable:
		return errUnavailable(room, fmt.Errorf("on its node: %s", msg))
	}
	return fmt.Errorf("room %q on its node: %s", room, msg)
}

func (g *gatewaySide) forget(link uint64) {
	g.mu.Lock()
	delete(g.links, link)
	g.mu.Unlock()
}

func (g *gatewaySide) lookup(link uint64) *remoteHandle {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.links[link]
}

// receive handles frames and closes the owners send. A message's frames
// are handed over client by client (a link's frames keep their order): a
// client's connection then gets its frames of the message at once and
// writes them in one system call, rather than one call per frame.
func (g *gatewaySide) receive(m *message) {
	switch m.op {
	case opFrames:
		ds := g.byLink(m.frames)
		for i := 0; i < len(ds); {
			j := i + 1
			for j < len(ds) && ds[j].link == ds[i].link {
				j++
			}
			if h := g.lookup(ds[i].link); h != nil {
				h.deliver(ds[i:j])
			}
			i = j
		}
		clear(g.sorted) // drop the frames: they alias the message
	case opClose:
		if h := g.lookup(m.link); h != nil {
			h.closeFromOwner(m.seq, m.code, m.reason, m.discard)
		}
	}
}

// byLink returns ds ordered by link, each link's frames in the order they
// came (which is their numbering): a counting sort, as a message holds a
// few links with many frames each.
func (g *gatewaySide) byLink(ds []delivery) []delivery {
	if len(g.linkIndex) > 1024 {
		g.linkIndex = map[uint64]int{} // clearing costs its past size: start afresh
	} else {
		clear(g.linkIndex)
	}
	g.nth, g.starts = g.nth[:0], g.starts[:0]
	for _, d := range ds {
		i, ok := g.linkIndex[d.link]
		if !ok {
			i = len(g.starts)
			g.linkIndex[d.link] = i
			g.starts = append(g.starts, 0)
		}
		g.starts[i]++ // a count for now
		g.nth = append(g.nth, i)
	}
	if len(g.starts) == 1 {
		return ds
	}
	sum := 0
	for i, c := range g.starts {
		g.starts[i], sum = sum, sum+c
	}
	g.sorted = slices.Grow(g.sorted[:0], len(ds))[:len(ds)]
	for k, d := range ds {
		i := g.nth[k]
		g.sorted[g.starts[i]] = d
		g.starts[i]++
	}
	return g.sorted
}

// ownerGone closes the clients of rooms owned by o, whose lease ended: they
// reconnect and find their rooms on the node that takes them over.
func (g *gatewaySide) ownerGone(o owner) {
	g.mu.Lock()
	var gone []*remoteHandle
	for _, h := range g.links {
		if h.owner == o {
			gone = append(gone, h)
		}
	}
	g.mu.Unlock()
	for _, h := range gone {
		h.lost(stateroom.CloseServiceRestart, "the room's node left the cluster; reconnect")
	}
}

// closeAll closes every forwarded client: this node fenced itself, so its
// links to other nodes' rooms are as unreliable as its own rooms.
func (g *gatewaySide) closeAll(code stateroom.CloseCode, reason string) {
	g.mu.Lock()
	all := make([]*remoteHandle, 0, len(g.links))
	for _, h := range g.links {
		all = append(all, h)
	}
	g.mu.Unlock()
	for _, h := range all {
		h.lost(code, reason)
	}
}

// checkOwners asks the directory whether the owners this node forwards to
// still hold their leases, and closes the clients of those that do not.
// The lease watcher normally tells first; this check does not depend on
// a watch that a JetStream leader change may interrupt.
func (g *gatewaySide) checkOwners(ctx context.Context) {
	g.mu.Lock()
	owners := map[owner]bool{}
	for _, h := range g.links {
		owners[h.owner] = true
	}
	g.mu.Unlock()
	for o := range owners {
		if live, err := g.n.dir.alive(ctx, o); err == nil && !live {
			g.n.log.Info("a room's node lost its lease", "gone", o.Node)
			g.ownerGone(o)
		}
	}
}

// remoteHandle is a client's place in a room owned by another node: its
// calls travel to the owner as messages on the owner's subject, numbered.
type remoteHandle struct {
	g     *gatewaySide
	owner owner
	room  string
	link  uint64

	mu      sync.Mutex
	member  rooms.Member
	client  stateroom.ClientID
	seqOut  uint64 // last message number sent
	seqIn   uint64 // last frame number received
	done    bool   // left, released or lost
	sending sync.Mutex
}

var _ rooms.Handle = (*remoteHandle)(nil)

func (h *remoteHandle) publish(m *message) {
	m.gateway, m.link = h.g.n.opts.Node, h.link
	if err := h.g.n.nc.Publish(ownerSubject(h.owner.Node), encodeMessage(m)); err != nil {
		h.lost(stateroom.CloseTryAgainLater, "the room's node cannot be reached; reconnect")
	}
}

// Connect makes m the client's connection and connects it on the owner,
// which answers with the client id.
func (h *remoteHandle) Connect(m rooms.Member) {
	h.mu.Lock()
	h.member = m
	h.mu.Unlock()
	reply, err := h.g.n.nc.Request(ownerSubject(h.owner.Node),
		encodeMessage(&message{op: opConnect, gateway: h.g.n.opts.Node, link: h.link}), requestTimeout)
	if err != nil {
		h.lost(stateroom.CloseTryAgainLater, "the room's node did not answer; reconnect")
		return
	}
	f, kind, msg, err := decodeReply(reply.Data, 1)
	if err != nil || kind != 0 {
		h.lost(stateroom.CloseTryAgainLater, "the room's node refused the connection; reconnect: "+msg)
		return
	}
	h.mu.Lock()
	h.client = stateroom.ClientID(f[0])
	h.mu.Unlock()
}

// Release gives up the place reserved by Join.
func (h *remoteHandle) Release() {
	if h.finish() {
		h.publish(&message{op: opRelease})
	}
}

// Message forwards one message of the client, numbered.
func (h *remoteHandle) Message(p stateroom.Payload) {
	h.sending.Lock()
	defer h.sending.Unlock()
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return
	}
	h.seqOut++
	seq := h.seqOut
	h.mu.Unlock()
	h.publish(&message{op: opMessage, seq: seq, binary: p.Binary, payload: p.Data})
	h.g.n.m.forwardedMessages.Inc()
}

// Leave tells the owner the client's connection ended.
func (h *remoteHandle) Leave() {
	if h.finish() {
		h.publish(&message{op: opLeave})
	}
}

// Kick closes the client here at once and has the owner deliver its
// Disconnect.
func (h *remoteHandle) Kick(code stateroom.CloseCode, reason string) {
	h.mu.Lock()
	m := h.member
	h.mu.Unlock()
	if m != nil {
		m.Close(code, reason, true)
	}
	if h.finish() {
		h.publish(&message{op: opKick, code: code, reason: reason})
	}
}

// Client returns the id the owner's room gave.
func (h *remoteHandle) Client() stateroom.ClientID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.client
}

// Logger returns a logger with the room, client and owner.
func (h *remoteHandle) Logger() *slog.Logger {
	return h.g.n.log.With("room", h.room, "client", h.Client(), "owner", h.owner.Node)
}

// finish marks the handle done and forgets its link; it reports whether
// this call did it.
func (h *remoteHandle) finish() bool {
	h.mu.Lock()
	first := !h.done
	h.done = true
	h.mu.Unlock()
	if first {
		h.g.forget(h.link)
	}
	return first
}

// deliver hands frames from the owner (the link's, in order) to the
// client's connection, unless frames were lost on the way: then the client
// is closed with 1013 rather than given frames out of order.
func (h *remoteHandle) deliver(ds []delivery) {
	h.mu.Lock()
	m, expected := h.member, h.seqIn+1
	h.seqIn = ds[len(ds)-1].seq
	h.mu.Unlock()
	if m == nil {
		return
	}
	for _, d := range ds {
		if d.seq != expected {
			h.g.n.m.gaps.Inc()
			h.lost(stateroom.CloseTryAgainLater, "messages were lost between nodes; reconnect")
			return
		}
		expected++
		h.g.n.m.forwardedFrames.Inc()
		if m.Send(d.frame) == rooms.QueueFull {
			h.Kick(stateroom.CloseSlowConsumer, "slow consumer")
			return
		}
	}
}

func (h *remoteHandle) closeFromOwner(seq uint64, code stateroom.CloseCode, reason string, discard bool) {
	h.mu.Lock()
	m, expected := h.member, h.seqIn+1
	h.seqIn = seq
	h.mu.Unlock()
	if seq != expected {
		discard = true // frames before the close were lost: don't pretend
	}
	if m != nil {
		// The transport calls Leave once the connection has closed, which
		// tells the owner to drop the link.
		m.Close(code, reason, discard)
	}
}

// lost closes the client because its link to the owner broke, and tells
// the owner (if it still listens) that the client left.
func (h *remoteHandle) lost(code stateroom.CloseCode, reason string) {
	h.mu.Lock()
	m := h.member
	h.mu.Unlock()
	if m != nil {
		m.Close(code, reason, false)
	}
	if h.finish() {
		h.publish(&message{op: opLeave}) // a failure comes back here, with finish already done
	}
}
