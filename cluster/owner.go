package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
	"github.com/stateroom-go/stateroom/store"
)

// ownerSide serves the rooms this node owns to clients held by other nodes
// (gateways): each link becomes a member of the local room whose frames go
// back to the gateway.
type ownerSide struct {
	n *Node

	mu    sync.Mutex
	rooms map[string]*ownedRoom // rooms this node owns
	links map[linkKey]*remoteLink
	out   map[string]*gatewayQueue // by gateway node
	gates map[string]*roomGate     // rooms being joined or released

	// runtime, when this node's room runtime can tell which rooms ended,
	// lets the node give those up (release); nil keeps them.
	runtime endingRuntime

	seed   maphash.Seed
	shards [ownerShards]chan ownerTask
}

// ownerShards is how many goroutines handle remote clients' messages; a
// link always goes to the same one, so its messages keep their order.
const ownerShards = 8

type ownerTask struct {
	m   *message
	msg *nats.Msg
}

type linkKey struct {
	gateway string
	link    uint64
}

// remoteLink is a client of a local room held by a gateway node.
type remoteLink struct {
	key       linkKey
	inc       string // the gateway's incarnation
	handle    rooms.Handle
	connected bool
	seqIn     uint64
	member    *remoteMember
}

func (o *ownerSide) init(n *Node) {
	o.n = n
	o.rooms = map[string]*ownedRoom{}
	o.links = map[linkKey]*remoteLink{}
	o.out = map[string]*gatewayQueue{}
	o.gates = map[string]*roomGate{}
	o.seed = maphash.MakeSeed()
	for i := range o.shards {
		ch := make(chan ownerTask, 256)
		o.shards[i] = ch
		n.own.Go(func() {
			for {
				select {
				case t := <-ch:
					o.handle(t.m, t.msg)
				case <-n.own.Quit():
					return
				}
			}
		})
	}
}

// ownedRoom is a room this node owns, from the epoch of its claim. ready
// is closed once the store is fenced for that epoch (err says how it went):
// every join of the room waits for it, so none loads the room's record
// before the fence.
type ownedRoom struct {
	epoch uint64
	ready chan struct{}
	err   error
}

// adopt records that this node owns room since cl, the first time this
// node sees that epoch, and fences the store for it: the room's record is
// saved again, so that a save by any earlier owner (expecting the revision
// it knew) fails from now on. Joins of the same epoch wait for the first
// one's fence (single flight), whichever of them was told Takeover.
func (o *ownerSide) adopt(ctx context.Context, room string, cl claim) error {
	o.mu.Lock()
	r := o.rooms[room]
	if r != nil && r.epoch == cl.Epoch {
		o.mu.Unlock()
		select {
		case <-r.ready:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r = &ownedRoom{epoch: cl.Epoch, ready: make(chan struct{})}
	o.rooms[room] = r
	o.mu.Unlock()

	r.err = o.fenceStore(ctx, room)
	close(r.ready)
	if r.err != nil {
		o.mu.Lock()
		if o.rooms[room] == r {
			delete(o.rooms, room)
		}
		o.mu.Unlock()
		return r.err
	}
	if cl.Takeover {
		o.n.log.Info("took over a room whose node left the cluster", "room", room, "from", cl.Previous.Node)
		o.n.m.ownership.WithLabelValues("takeover").Inc()
		if o.n.onTakeover != nil {
			o.n.onTakeover(room)
		}
	} else {
		o.n.m.ownership.WithLabelValues("created").Inc()
	}
	return nil
}

// fenceStore saves the room's record again, unchanged, with a new
// revision. A room without a record has nothing to fence: an earlier
// owner that never saved could still create one (docs/DECISIONS.md).
func (o *ownerSide) fenceStore(ctx context.Context, room string) error {
	rec, err := o.n.store.Load(ctx, room)
	switch {
	case err == nil:
		_, err = o.n.store.Save(ctx, room, rec.Data, rec.Revision)
		return err
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrCorrupt):
		return nil // a damaged record is set aside by the room
	}
	return err
}

// endingRuntime is what a node needs of its room runtime
// (rooms.Registry) to give up the rooms that end.
type endingRuntime interface {
	OnEnded(f func(room string, code stateroom.CloseCode))
	WaitSaved(room string)
	Idle(room string) bool
}

// roomGate orders a room's joins on this node, which share it, and the
// release of its ownership, which holds it alone: a release never runs
// while a join of the room is between its claim and its room.
type roomGate struct {
	sync.RWMutex
	users int // under ownerSide.mu: the gate is dropped when none is left
}

// lockRoom takes room's gate, shared (a join) or alone (a release), and
// returns its unlock.
func (o *ownerSide) lockRoom(room string, alone bool) (unlock func()) {
	o.mu.Lock()
	g := o.gates[room]
	if g == nil {
		g = &roomGate{}
		o.gates[room] = g
	}
	g.users++
	o.mu.Unlock()
	if alone {
		g.Lock()
	} else {
		g.RLock()
	}
	return func() {
		if alone {
			g.Unlock()
		} else {
			g.RUnlock()
		}
		o.mu.Lock()
		if g.users--; g.users == 0 {
			delete(o.gates, room)
		}
		o.mu.Unlock()
	}
}

// ended is told by the room runtime, under the room's lock, that a room
// ended. A room this node owns that ended while the node serves is given
// up in the background (release). Not when the server stops (1001): the
// node resigns its lease next, which frees its rooms at once, and a
// shutdown should not wait for a write per room. A fenced node has
// forgotten its rooms before it closes them.
func (o *ownerSide) ended(room string, code stateroom.CloseCode) {
	if code == stateroom.CloseGoingAway || o.owned(room) == nil {
		return
	}
	o.n.own.Go(func() { o.release(room) })
}

// release gives up this node's ownership of an ended room in the
// directory, so that its entry does not stay behind and the next join,
// on any node, creates the room there. It first waits for the room's last
// save (the next owner loads it), then holds the room's gate alone: a join
// of the room on this node waits, then claims it afresh (a new epoch,
// whose store fence holds as for any new owner). If a join started the
// room again meanwhile, or one of its saves is pending, the room is kept:
// its end will release it.
func (o *ownerSide) release(room string) {
	n := o.n
	o.runtime.WaitSaved(room)
	n.gate.RLock() // see Node.gate
	defer n.gate.RUnlock()
	if n.fenced.Load() {
		return // its rooms are forgotten; others may have taken them
	}
	defer o.lockRoom(room, true)()
	r := o.owned(room)
	// A fence that began while this waited for the room is waiting for the
	// gate: let it have it.
	if r == nil || !o.runtime.Idle(room) || n.fenced.Load() {
		return
	}
	ctx, cancel := n.opContext()
	defer cancel()
	err := n.dir.release(ctx, room, r.epoch)
	if err != nil && !errors.Is(err, errMoved) {
		n.log.Warn("an ended room was not given up", "room", room, "err", err)
		return
	}
	o.mu.Lock()
	if o.rooms[room] == r {
		delete(o.rooms, room)
	}
	o.mu.Unlock()
	if err == nil {
		n.m.ownership.WithLabelValues("released").Inc()
	}
}

// owned returns the room's entry if this node owns it.
func (o *ownerSide) owned(room string) *ownedRoom {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rooms[room]
}

// forgetRooms drops what this node believed it owned (it was fenced).
func (o *ownerSide) forgetRooms() {
	o.mu.Lock()
	clear(o.rooms)
	o.mu.Unlock()
}

// receive queues a gateway's message on its link's shard.
func (o *ownerSide) receive(m *message, msg *nats.Msg) {
	shard := (maphash.String(o.seed, m.gateway) + m.link) % ownerShards // no allocation per message
	select {
	case o.shards[shard] <- ownerTask{m, msg}:
	case <-o.n.own.Quit():
	}
}

func (o *ownerSide) link(k linkKey) *remoteLink {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.links[k]
}

func (o *ownerSide) drop(k linkKey) {
	o.mu.Lock()
	delete(o.links, k)
	o.mu.Unlock()
}

func (o *ownerSide) handle(m *message, msg *nats.Msg) {
	k := linkKey{m.gateway, m.link}
	switch m.op {
	case opJoin:
		msg.Respond(o.join(k, m))
	case opConnect:
		l := o.link(k)
		if l == nil || l.connected {
			msg.Respond(replyErr(errKindOther, "no such link"))
			return
		}
		l.connected = true
		l.member = &remoteMember{q: o.queue(m.gateway), link: m.link}
		l.handle.Connect(l.member)
		msg.Respond(replyOf(replyOK, uint64(l.handle.Client())))
	case opMessage:
		l := o.link(k)
		if l == nil || !l.connected {
			return
		}
		l.seqIn++
		if m.seq != l.seqIn {
			o.n.m.gaps.Inc()
			l.handle.Kick(stateroom.CloseTryAgainLater, "messages were lost between nodes; reconnect")
			return
		}
		l.handle.Message(stateroom.Payload{Binary: m.binary, Data: m.payload})
	case opKick:
		if l := o.link(k); l != nil {
			o.drop(k)
			if l.connected {
				l.handle.Kick(m.code, m.reason) // delivers its Disconnect
			} else {
				l.handle.Release()
			}
		}
	case opLeave, opRelease:
		l := o.link(k)
		if l == nil {
			return
		}
		o.drop(k)
		if l.connected {
			l.handle.Leave()
		} else {
			l.handle.Release()
		}
	}
}

// join joins the local room for a gateway's client, if this node still
// owns it, and answers the gateway.
func (o *ownerSide) join(k linkKey, m *message) []byte {
	o.n.gate.RLock() // see Node.gate
	defer o.n.gate.RUnlock()
	if o.n.fenced.Load() {
		return replyErr(errKindUnavailable, errFenced.Error())
	}
	defer o.lockRoom(m.room, false)() // see roomGate
	// A fence that began while this waited for the room waits for the gate.
	if o.n.fenced.Load() {
		return replyErr(errKindUnavailable, errFenced.Error())
	}
	ctx, cancel := o.n.opContext()
	defer cancel()
	if r := o.owned(m.room); r != nil {
		err := o.adopt(ctx, m.room, claim{Epoch: r.epoch, Mine: true}) // waits for its fence
		if err != nil {
			return replyErr(errKindUnavailable, err.Error())
		}
	} else {
		// The gateway's directory lookup may be newer than ours.
		cl, err := o.n.dir.claim(ctx, m.room)
		if err == nil && cl.Mine {
			err = o.adopt(ctx, m.room, cl)
		}
		if err != nil {
			return replyErr(errKindUnavailable, err.Error())
		}
		if !cl.Mine {
			return replyErr(errKindNotOwner, "owned by "+cl.Owner.Node)
		}
	}
	req := rooms.JoinRequest{Room: m.room, Token: m.token}
	if m.charge {
		// The gateway charges its client's creation limit (the client's
		// address is there), then asks again.
		req.Creating = func() error { return errMustCharge }
	}
	switch m.idKind {
	case identityString:
		req.Identity = string(m.identity)
	case identityJSON:
		req.Identity = json.RawMessage(m.identity)
	}
	h, err := o.n.local.Join(req)
	switch {
	case errors.Is(err, errMustCharge):
		return replyErr(errKindMustCharge, err.Error())
	case errors.Is(err, rooms.ErrShuttingDown):
		return replyErr(errKindShuttingDown, err.Error())
	case errors.Is(err, rooms.ErrTooManyRooms):
		return replyErr(errKindTooManyRooms, err.Error())
	case errors.Is(err, rooms.ErrRoomFull):
		return replyErr(errKindRoomFull, err.Error())
	case errors.Is(err, stateroom.ErrRoomRefused):
		return replyErr(errKindRefused, err.Error())
	case err != nil:
		return replyErr(errKindOther, err.Error())
	}
	o.mu.Lock()
	o.links[k] = &remoteLink{key: k, inc: m.incarnation, handle: h}
	o.mu.Unlock()
	return replyOf(replyOK)
}

// gatewayGone ends the clients that incarnation inc of a gateway node
// held: it left the cluster. Each link's teardown goes through the link's
// shard, after whatever of that link is queued there. Links of a newer
// incarnation of the node are kept: the event may come late.
func (o *ownerSide) gatewayGone(node, inc string) {
	o.mu.Lock()
	var gone []linkKey
	for k, l := range o.links {
		if k.gateway == node && l.inc == inc {
			gone = append(gone, k)
		}
	}
	o.mu.Unlock()
	for _, k := range gone {
		o.receive(&message{op: opLeave, gateway: k.gateway, link: k.link}, nil)
	}
}

// queue returns the outbound queue to a gateway, starting it if needed.
func (o *ownerSide) queue(gateway string) *gatewayQueue {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.out[gateway]
	if q == nil {
		q = newGatewayQueue(o.n, gateway)
		o.out[gateway] = q
	}
	return q
}

// remoteMember is a gateway's client as a member of a local room: its
// frames are queued for the gateway, numbered per link.
type remoteMember struct {
	q      *gatewayQueue
	link   uint64
	seq    uint64 // under the room's lock, like every Member call
	closed bool
}

// Send queues the frame for the gateway; it never blocks.
func (m *remoteMember) Send(frame []byte) rooms.SendResult {
	if m.closed {
		return rooms.DroppedClosing
	}
	m.seq++
	if !m.q.push(outItem{delivery: delivery{link: m.link, seq: m.seq, frame: frame}}) {
		m.seq--
		return rooms.QueueFull
	}
	return rooms.Queued
}

// Close queues the close for the gateway.
func (m *remoteMember) Close(code stateroom.CloseCode, reason string, discard bool) bool {
	if m.closed {
		return false
	}
	m.closed = true
	m.seq++
	m.q.pushClose(outItem{delivery: delivery{link: m.link, seq: m.seq}, close: true, code: code, reason: reason, discard: discard})
	return true
}
