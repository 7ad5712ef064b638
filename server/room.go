package server

import (
	"errors"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// room is one running room: its service, its clients and its timer. Every
// call into the service happens with mu held, which is what makes a room's
// events serial; mu is never held during socket I/O (frames only go into
// queues). A room is also the stateroom.Room its service is handed.
type room struct {
	id      string
	srv     *Server
	created time.Time

	// Readable without mu, for Server.Rooms.
	clients      atomic.Int32
	lastActivity atomic.Int64 // unix nanoseconds

	mu        sync.Mutex
	ended     bool
	faulted   bool // the service panicked: it is never called again
	endCode   stateroom.CloseCode
	endReason string
	svc       stateroom.Service
	members   []*conn // in join order; detached ones stay until settle
	byID      map[stateroom.ClientID]*conn
	tokens    map[string]stateroom.ClientID
	lastID    stateroom.ClientID
	pending   int     // joins between registry.join and connect or release
	leaving   []*conn // detached clients whose Disconnect is still due
	departing *conn   // the client whose Disconnect is running, for ClientIdentity

	timer    *time.Timer
	timerGen uint64 // bumped by every SetTimer and stop: a stale firing is ignored
	timerDue bool   // a zero-delay timer fires once the current event is handled
	inTimer  bool
	grace    *time.Timer
	graceGen uint64
}

type eventKind uint8

const (
	evInit eventKind = iota
	evConnect
	evDisconnect
	evMessage
	evTimer
)

func newRoom(s *Server, id string) *room {
	now := time.Now()
	r := &room{
		id:      id,
		srv:     s,
		created: now,
		byID:    make(map[stateroom.ClientID]*conn),
	}
	r.lastActivity.Store(now.UnixNano())
	return r
}

// logger returns the room's logger, built on use (see conn.logger).
func (r *room) logger() *slog.Logger { return r.srv.log.With("room", r.id) }

// ID implements stateroom.Room.
func (r *room) ID() string { return r.id }

// Send implements stateroom.Room: the frame is built once and the same bytes
// go into the queue of every recipient.
func (r *room) Send(to stateroom.Recipient, p stateroom.Payload) {
	if r.ended {
		return
	}
	m := r.srv.metrics
	op := ws.OpText
	if p.Binary {
		op = ws.OpBinary
	} else if !utf8.Valid(p.Data) {
		m.dropInvalidUTF8.Inc()
		r.logger().Warn("message dropped: the service sent invalid UTF-8 as text; send bytes with stateroom.Binary", "to", to.String())
		return
	}
	if to.Kind() == stateroom.ToClient {
		c := r.byID[to.Client()]
		if c == nil || !c.attached {
			m.dropNotConnected.Inc()
			if r.srv.debugOn() {
				r.logger().Debug("message dropped: client not connected", "client", to.Client())
			}
			return
		}
		frame := serverFrame(op, p.Data)
		if r.push(c, frame) {
			m.messagesOut.Inc()
			m.bytesOut.Add(float64(len(frame)))
		}
		return
	}
	var frame []byte
	n := 0
	for _, c := range r.members {
		if !c.attached || !to.Includes(c.id) {
			continue
		}
		if frame == nil {
			frame = serverFrame(op, p.Data)
		}
		if r.push(c, frame) {
			n++
		}
	}
	// Counted once per Send, not per recipient: two atomic adds whatever
	// the fan-out.
	if n > 0 {
		m.messagesOut.Add(float64(n))
		m.bytesOut.Add(float64(n * len(frame)))
	}
}

// Close implements stateroom.Room.
func (r *room) Close(id stateroom.ClientID, code stateroom.CloseCode, reason string) error {
	if err := stateroom.CheckServiceClose(code); err != nil {
		return err
	}
	if c := r.byID[id]; c != nil && c.attached && !r.ended {
		r.kickLocked(c, code, reason)
	}
	return nil
}

// push queues frame for c and reports whether it was queued; a client whose
// queue is full is closed as a slow consumer.
func (r *room) push(c *conn, frame []byte) bool {
	switch c.send(frame) {
	case queued:
		return true
	case droppedClosing:
		r.srv.metrics.dropClosing.Inc()
	case queueFull:
		r.srv.metrics.dropQueueFull.Inc()
		c.logger().Warn("closing slow consumer: its send queue is full")
		r.kickLocked(c, stateroom.CloseSlowConsumer, "slow consumer")
	}
	return false
}

// SetTimer implements stateroom.Room.
func (r *room) SetTimer(d time.Duration) {
	if r.ended {
		return
	}
	r.stopTimer()
	if d <= 0 && !r.inTimer {
		r.timerDue = true
		return
	}
	// A zero delay set by the Timer callback itself goes through the clock,
	// so a service that re-arms at zero cannot starve the room's other events.
	d = max(d, 0)
	gen := r.timerGen
	r.srv.wg.Add(1)
	r.timer = time.AfterFunc(d, func() {
		defer r.srv.wg.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		if gen != r.timerGen || r.ended {
			return
		}
		r.timer = nil
		r.deliver(evTimer, 0, stateroom.Payload{})
	})
}

func (r *room) stopTimer() {
	r.timerGen++
	r.timerDue = false
	if r.timer != nil {
		if r.timer.Stop() {
			r.srv.wg.Done() // its callback will never run
		}
		r.timer = nil
	}
}

// reserve holds the room open for a client between the registry's join and
// connect (the HTTP upgrade happens in between). Called with mu held.
func (r *room) reserve() {
	r.pending++
	r.graceGen++
	if r.grace != nil {
		if r.grace.Stop() {
			r.srv.wg.Done()
		}
		r.grace = nil
	}
}

// release drops a reservation whose upgrade failed.
func (r *room) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending--
	r.settle()
}

// connect turns c's reservation into a member, delivering Connect. If the
// room ended meanwhile, c is closed with the code the room ended with.
func (r *room) connect(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ended && c.token != "" {
		if id, ok := r.tokens[c.token]; ok {
			if old := r.byID[id]; old != nil && old.attached {
				r.kickLocked(old, stateroom.CloseReplaced, "replaced by a newer connection with the same token")
				r.settle() // its Disconnect comes before the new Connect
			}
			c.id = id
		}
	}
	r.pending--
	if r.ended {
		c.closeWith(r.endCode, r.endReason, false)
		return
	}
	if c.id == 0 {
		r.lastID++
		c.id = r.lastID
		if c.token != "" {
			if r.tokens == nil {
				r.tokens = make(map[string]stateroom.ClientID)
			}
			r.tokens[c.token] = c.id
		}
	}
	c.attached = true
	r.members = append(r.members, c)
	r.byID[c.id] = c
	r.clients.Add(1)
	r.srv.metrics.clients.Inc()
	if r.srv.debugOn() {
		c.logger().Debug("client connected")
	}
	r.deliver(evConnect, c.id, stateroom.Payload{})
}

// message hands one message from c to the service, unless c has left.
func (r *room) message(c *conn, p stateroom.Payload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.attached {
		r.deliver(evMessage, c.id, p)
	}
}

// leave delivers c's Disconnect if it is still a member; its reader has
// stopped.
func (r *room) leave(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.attached {
		r.detach(c)
		r.settle()
	}
}

// kick closes c with code and reason and delivers its Disconnect; for callers
// outside the room (heartbeat sweeper, reader).
func (r *room) kick(c *conn, code stateroom.CloseCode, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kickLocked(c, code, reason)
	r.settle()
}

// kickLocked closes c and queues its Disconnect, to run once the current
// event is handled. A slow consumer's queue is discarded: it is not reading.
func (r *room) kickLocked(c *conn, code stateroom.CloseCode, reason string) {
	if c.attached {
		r.detach(c)
	}
	if !c.closeWith(code, reason, code == stateroom.CloseSlowConsumer) {
		return // already closing: counted then
	}
	switch code {
	case stateroom.CloseSlowConsumer:
		r.srv.metrics.slowConsumers.Inc()
	case stateroom.CloseHeartbeatTimeout:
		r.srv.metrics.heartbeatTimeouts.Inc()
	}
}

// detach stops messages to and from c and queues its Disconnect. It leaves
// r.members alone, so it is safe during a broadcast loop.
func (r *room) detach(c *conn) {
	c.attached = false
	c.leaving = true
	r.leaving = append(r.leaving, c)
	r.clients.Add(-1)
	r.srv.metrics.clients.Dec()
}

// deliver runs one event through the service, then whatever that event
// caused (Disconnects of kicked clients, a zero-delay timer).
func (r *room) deliver(kind eventKind, id stateroom.ClientID, p stateroom.Payload) {
	if r.ended {
		return
	}
	r.call(kind, id, p)
	r.settle()
}

// settle runs the events queued while the room was locked, then starts the
// grace period if the room is empty.
func (r *room) settle() {
	for !r.ended {
		if len(r.leaving) > 0 {
			c := r.leaving[0]
			r.leaving = r.leaving[1:]
			r.forget(c)
			if r.srv.debugOn() {
				c.logger().Debug("client disconnected")
			}
			r.disconnect(c)
			continue
		}
		if r.timerDue {
			r.timerDue = false
			r.call(evTimer, 0, stateroom.Payload{})
			continue
		}
		break
	}
	if r.ended || len(r.members) > 0 || r.pending > 0 {
		return
	}
	switch g := r.srv.opts.RoomGracePeriod; g {
	case KeepRoomsForever:
	case EndRoomsImmediately:
		r.end(stateroom.CloseNormal, "", false)
	default:
		if r.grace != nil {
			return
		}
		gen := r.graceGen
		r.srv.wg.Add(1)
		r.grace = time.AfterFunc(g, func() {
			defer r.srv.wg.Done()
			r.mu.Lock()
			defer r.mu.Unlock()
			if gen != r.graceGen || r.ended {
				return
			}
			r.grace = nil
			r.end(stateroom.CloseNormal, "", false)
		})
	}
}

// disconnect delivers c's Disconnect; c has left the member list, and
// departing keeps its identity reachable during the call.
func (r *room) disconnect(c *conn) {
	r.departing = c
	r.call(evDisconnect, c.id, stateroom.Payload{})
	r.departing = nil
}

// forget removes a detached client from the member list.
func (r *room) forget(c *conn) {
	c.leaving = false
	for i, m := range r.members {
		if m == c {
			r.members = slices.Delete(r.members, i, i+1)
			break
		}
	}
	if r.byID[c.id] == c {
		delete(r.byID, c.id)
	}
}

// call runs one service callback. A panic ends the room (see fault).
func (r *room) call(kind eventKind, id stateroom.ClientID, p stateroom.Payload) {
	if r.faulted {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.fault(v, debug.Stack())
		}
	}()
	r.lastActivity.Store(time.Now().UnixNano())
	switch kind {
	case evInit:
		r.svc.Init(r, stateroom.InitEvent{})
	case evConnect:
		var identity any
		if c := r.byID[id]; c != nil {
			identity = c.identity
		}
		r.svc.Connect(r, stateroom.ConnectEvent{Client: id, Identity: identity})
	case evDisconnect:
		r.svc.Disconnect(r, stateroom.DisconnectEvent{Client: id})
	case evMessage:
		r.svc.Message(r, stateroom.MessageEvent{Client: id, Payload: p})
	case evTimer:
		r.inTimer = true
		defer func() { r.inTimer = false }()
		r.svc.Timer(r, stateroom.TimerEvent{})
	}
}

// fault ends the room after its service panicked with v.
func (r *room) fault(v any, stack []byte) {
	r.faulted = true
	reason := "service fault"
	var f *stateroom.Fault
	isFault := false
	if err, ok := v.(error); ok && errors.As(err, &f) {
		isFault = true
		if f.Reason != "" {
			reason = f.Reason
		}
	}
	r.srv.metrics.faults.WithLabelValues(faultKind(reason, isFault)).Inc()
	r.logger().Error("service panicked; ending the room", "panic", v, "stack", string(stack))
	r.end(stateroom.CloseServiceFault, reason, false)
}

// close ends the room from outside (operator, factory swap, shutdown),
// delivering every client's Disconnect. It reports false if the room had
// already ended.
func (r *room) close(code stateroom.CloseCode, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	r.end(code, reason, true)
	return true
}

// end ends the room: every client is closed with code and reason, the timers
// stop, (if notify and the service has not faulted) every client's
// Disconnect is delivered, the service is closed if it is an io.Closer, and
// the room leaves the registry. Called with mu held.
func (r *room) end(code stateroom.CloseCode, reason string, notify bool) {
	if r.ended {
		return
	}
	r.ended = true
	r.endCode, r.endReason = code, reason
	r.stopTimer()
	r.graceGen++
	if r.grace != nil {
		if r.grace.Stop() {
			r.srv.wg.Done()
		}
		r.grace = nil
	}
	gone := r.leaving
	attached := 0
	for _, c := range r.members {
		if c.attached {
			c.attached = false
			gone = append(gone, c)
			attached++
		}
		c.closeWith(code, reason, false)
	}
	r.clients.Store(0)
	r.srv.metrics.clients.Sub(float64(attached))
	if notify {
		for _, c := range gone {
			r.disconnect(c)
		}
	}
	r.members, r.leaving, r.byID, r.tokens = nil, nil, nil, nil
	if closer, ok := r.svc.(io.Closer); ok {
		r.closeService(closer)
	}
	r.svc = nil
	r.srv.reg.remove(r)
	r.srv.metrics.roomEnded(code)
	// An empty room ending is routine, like a client leaving; anything
	// else is worth a line at Info.
	if code != stateroom.CloseNormal {
		r.logger().Info("room ended", "code", code, "reason", reason)
	} else if r.srv.debugOn() {
		r.logger().Debug("room ended", "code", code, "reason", reason)
	}
}

// full reports whether a client with the reconnection token token would be
// one too many for Options.MaxClientsPerRoom. A token that a connected
// client holds is never refused: the newcomer replaces that client. Called
// with mu held.
func (r *room) full(token string) bool {
	max := r.srv.opts.MaxClientsPerRoom
	if max == NoLimit || int(r.clients.Load())+r.pending < max {
		return false
	}
	if id, ok := r.tokens[token]; ok && token != "" {
		if c := r.byID[id]; c != nil && c.attached {
			return false
		}
	}
	return true
}

// memoryBytes asks the service for its memory (MemoryReporter) if the room
// is idle at this instant, and returns -1 otherwise.
func (r *room) memoryBytes() (n int64) {
	if !r.mu.TryLock() {
		return -1
	}
	defer r.mu.Unlock()
	mr, ok := r.svc.(stateroom.MemoryReporter)
	if r.ended || r.faulted || !ok {
		return -1
	}
	defer func() {
		if v := recover(); v != nil {
			r.logger().Error("service MemoryBytes panicked", "panic", v)
			n = -1
		}
	}()
	return mr.MemoryBytes()
}

// closeService calls the service's Close. It runs even after a panic: a
// WebAssembly service must release its instance.
func (r *room) closeService(closer io.Closer) {
	defer func() {
		if v := recover(); v != nil {
			r.logger().Error("service Close panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if err := closer.Close(); err != nil {
		r.logger().Warn("service Close failed", "err", err)
	}
}
