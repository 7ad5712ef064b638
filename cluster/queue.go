package cluster

import (
	"sync"

	"github.com/stateroom-go/stateroom"
)

// outItem is a frame or a close for one link.
type outItem struct {
	link, seq uint64
	frame     []byte
	close     bool
	code      stateroom.CloseCode
	reason    string
	discard   bool
}

// maxQueuedBytes bounds the frames queued for one gateway; past it a
// member's Send reports QueueFull and the room closes that client as a slow
// consumer.
const maxQueuedBytes = 64 << 20

// gatewayQueue carries the frames of this node's rooms to one gateway node
// (by name: a restarted node keeps its queue; one goroutine per node name
// the cluster has had).
// Members push under their room's lock (never blocking); one goroutine
// publishes, putting a frame sent to several of the gateway's clients in
// one message with their links (a broadcast crosses the network once per
// gateway, not once per client).
type gatewayQueue struct {
	n       *Node
	subject string
	wake    chan struct{}

	mu    sync.Mutex
	items []outItem
	bytes int
}

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

// publish sends a batch, one message per run of items that share a frame.
func (q *gatewayQueue) publish(batch []outItem) {
	nc := q.n.nc
	for i := 0; i < len(batch); {
		it := batch[i]
		if it.close {
			nc.Publish(q.subject, encodeMessage(&message{op: opClose, link: it.link, seq: it.seq, code: it.code, reason: it.reason, discard: it.discard}))
			i++
			continue
		}
		m := &message{op: opFrames, payload: it.frame}
		j := i
		for j < len(batch) && !batch[j].close && sameBytes(batch[j].frame, it.frame) && j-i < maxFrameLinks {
			m.links = append(m.links, linkSeq{batch[j].link, batch[j].seq})
			j++
		}
		nc.Publish(q.subject, encodeMessage(m))
		i = j
	}
}

// sameBytes reports whether a and b are the same slice of memory: a room
// encodes a payload once and hands the same frame to every recipient.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
