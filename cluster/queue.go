package cluster

import (
	"encoding/binary"
	"sync"

	"github.com/stateroom-go/stateroom"
)

// outItem is a frame or a close for one link.
type outItem struct {
	delivery // the link, its number, and the frame unless close
	close    bool
	code     stateroom.CloseCode
	reason   string
	discard  bool
}

// maxQueuedBytes bounds the frames queued for one gateway; past it a
// member's Send reports QueueFull and the room closes that client as a slow
// consumer.
const maxQueuedBytes = 64 << 20

// gatewayQueue carries the frames of this node's rooms to one gateway node
// (by name: a restarted node keeps its queue; one goroutine per node name
// the cluster has had).
// Members push under their room's lock (never blocking); one goroutine
// publishes what has queued since its last round in as few messages as it
// can: each holds many frames, and a frame sent to several of the
// gateway's clients travels once with their links (wire.go, opFrames).
// Fewer, larger messages are what make a broadcast over three nodes cheap:
// every NATS message costs a parse and a route hop in each of two NATS
// servers and a dispatch in the gateway's client, whatever its size.
type gatewayQueue struct {
	n       *Node
	subject string
	wake    chan struct{}

	mu    sync.Mutex
	items []outItem
	bytes int

	// Used by run only: kept from one round to the next.
	pending []delivery
	encode  encoder
}

// maxMessageBytes is where a gateway queue starts a new message: large
// enough to carry a burst of broadcasts in one, well under NATS's default
// max_payload (1 MiB).
const maxMessageBytes = 64 << 10

func newGatewayQueue(n *Node, gateway string) *gatewayQueue {
	q := &gatewayQueue{n: n, subject: gatewaySubject(gateway), wake: make(chan struct{}, 1)}
	n.own.Spawn(q.run)
	return q
}

func (q *gatewayQueue) push(it outItem) bool {
	q.mu.Lock()
	if q.bytes+len(it.frame) > maxQueuedBytes {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.bytes += len(it.frame)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *gatewayQueue) pushClose(it outItem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.signal()
}

func (q *gatewayQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *gatewayQueue) run() {
	var batch []outItem
	for {
		select {
		case <-q.wake:
		case <-q.n.own.Quit():
			return
		}
		q.mu.Lock()
		batch, q.items = q.items, batch[:0]
		q.bytes = 0
		q.mu.Unlock()
		q.publish(batch)
		clear(batch) // drop the frames: they may be large
	}
}

// publish sends a batch in order: its frames in opFrames messages of up
// to maxMessageBytes (a larger frame travels alone, as it would
// unbatched), each close in a message of its own (closes are rare).
// nats.go copies what it publishes, so one buffer serves every message.
func (q *gatewayQueue) publish(batch []outItem) {
	nc := q.n.nc
	size := 0 // at least what q.pending encodes to
	flush := func() {
		if len(q.pending) > 0 {
			q.encode = append(q.encode[:0], opFrames).frames(q.pending)
			nc.Publish(q.subject, q.encode)
			clear(q.pending) // drop the frames: they may be large
			q.pending = q.pending[:0]
		}
		size = 0
	}
	const linkBytes = 2 * binary.MaxVarintLen64            // a link and its number
	const groupBytes = linkBytes + 2*binary.MaxVarintLen64 // and a group's count and frame length
	for _, it := range batch {
		if it.close {
			flush()
			nc.Publish(q.subject, encodeMessage(&message{op: opClose, link: it.link, seq: it.seq, code: it.code, reason: it.reason, discard: it.discard}))
			continue
		}
		cost := linkBytes
		if len(q.pending) == 0 || !sameBytes(it.frame, q.pending[len(q.pending)-1].frame) {
			cost = groupBytes + len(it.frame)
		}
		if size > 0 && size+cost > maxMessageBytes {
			flush()
			cost = groupBytes + len(it.frame)
		}
		size += cost
		q.pending = append(q.pending, it.delivery)
	}
	flush()
	if cap(q.encode) > 4*maxMessageBytes {
		q.encode = nil // a huge frame passed: do not keep its buffer
	}
}
