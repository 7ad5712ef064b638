package rooms

import (
	"context"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/stateroom-go/stateroom"
)

// Room is one running room: its service instance, its members and its
// timers. Every call into the service happens with mu held, which is what
// makes a room's events serial; mu is never held during I/O (frames only go
// into members' queues). A Room is also the stateroom.Room its service is
// handed.
type Room struct {
	id      string
	reg     *Registry
	created time.Time

	lastActivity atomic.Int64 // unix nanoseconds, readable without mu

	mu        sync.Mutex
	ended     bool
	endCode   stateroom.CloseCode
	endReason string
	inst      instance
	members   membership
	departing *seat // the client whose Disconnect is running, for Identity

	timer    ownedTimer // the service's timer (Room.SetTimer)
	timerDue bool       // a zero-delay timer fires once the current event is handled
	inTimer  bool
	grace    ownedTimer // ends the room once it has been empty for the grace period

	// Durable rooms (durable.go), with a store.
	restored   bool       // Init is told the instance was restored
	dirty      bool       // an event ran since the last snapshot
	checkpoint ownedTimer // the next checkpoint of a dirty room

	// Hibernation (hibernate.go).
	sleeping []byte               // the envelope of the dropped instance; nil when awake
	idle     ownedTimer           // the next look at whether the room may hibernate
	kept     []stateroom.ClientID // Init's Clients while a woken instance's Init runs
}

type eventKind uint8

const (
	evInit eventKind = iota
	evConnect
	evDisconnect
	evMessage
	evTimer
)

func newRoom(g *Registry, id string) *Room {
	now := time.Now()
	r := &Room{id: id, reg: g, created: now}
	r.lastActivity.Store(now.UnixNano())
	return r
}

// logger returns the room's logger, built on use: slog's With formats its
// attributes at once, which would cost every room for the few that log.
func (r *Room) logger() *slog.Logger { return r.reg.cfg.Logger.With("room", r.id) }

func (r *Room) debugOn() bool { return r.reg.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) }

// ID implements stateroom.Room.
func (r *Room) ID() string { return r.id }

// Send implements stateroom.Room: the frame is built once and the same bytes
// go into the queue of every recipient. Text that is not valid UTF-8 is
// dropped with a warning, whether the service is native or WebAssembly:
// the one policy for what a service sends (a client would have to close
// the connection on it, RFC 6455 section 8.1).
func (r *Room) Send(to stateroom.Recipient, p stateroom.Payload) {
	if r.ended {
		return
	}
	m := &r.reg.metrics
	if !p.Binary && !utf8.Valid(p.Data) {
		m.DropInvalidUTF8.Inc()
		r.logger().Warn("message dropped: the service sent invalid UTF-8 as text; send bytes with stateroom.Binary", "to", to.String())
		return
	}
	if to.Kind() == stateroom.ToClient {
		s := r.members.member(to.Client())
		if s == nil {
			m.DropNotConnected.Inc()
			if r.debugOn() {
				r.logger().Debug("message dropped: client not connected", "client", to.Client())
			}
			return
		}
		frame := r.reg.cfg.Encode(p)
		if r.push(s, frame) {
			m.MessagesOut.Inc()
			m.BytesOut.Add(float64(len(frame)))
		}
		return
	}
	var frame []byte
	n := 0
	for _, s := range r.members.order {
		if s.state != attached || !to.Includes(s.id) {
			continue
		}
		if frame == nil {
			frame = r.reg.cfg.Encode(p)
		}
		if r.push(s, frame) {
			n++
		}
	}
	// Counted once per Send, not per recipient: two atomic adds whatever
	// the fan-out.
	if n > 0 {
		m.MessagesOut.Add(float64(n))
		m.BytesOut.Add(float64(n * len(frame)))
	}
}

// push queues frame for s and reports whether it was queued; a client whose
// queue is full is closed as a slow consumer.
func (r *Room) push(s *seat, frame []byte) bool {
	switch s.member.Send(frame) {
	case Queued:
		return true
	case DroppedClosing:
		r.reg.metrics.DropClosing.Inc()
	case QueueFull:
		r.reg.metrics.DropQueueFull.Inc()
		s.Logger().Warn("closing slow consumer: its send queue is full")
		r.kickLocked(s, stateroom.CloseSlowConsumer, "slow consumer")
	}
	return false
}

// SetTimer implements stateroom.Room.
func (r *Room) SetTimer(d time.Duration) {
	if r.ended {
		return
	}
	r.timer.stop(r.reg.cfg.Owner)
	r.timerDue = false
	if d <= 0 && !r.inTimer {
		r.timerDue = true
		return
	}
	// A zero delay set by the Timer callback itself goes through the clock,
	// so a service that re-arms at zero cannot starve the room's other events.
	r.armTimer(max(d, 0))
}

// armTimer arms the service's timer to fire after d.
func (r *Room) armTimer(d time.Duration) {
	r.timer.arm(r, d, func() { r.deliver(evTimer, nil, stateroom.Payload{}) })
}

// Close implements stateroom.Room.
func (r *Room) Close(id stateroom.ClientID, code stateroom.CloseCode, reason string) error {
	if err := stateroom.CheckServiceClose(code); err != nil {
		return err
	}
	if s := r.members.member(id); s != nil && !r.ended {
		r.kickLocked(s, code, reason)
	}
	return nil
}

// Identity returns the identity client id joined with, for a room's service
// during a callback (see server.ClientIdentity): while the client is
// connected and during its Disconnect. It returns nil for an unknown client
// or a Room not of this package.
func Identity(room stateroom.Room, id stateroom.ClientID) any {
	r, ok := room.(*Room)
	if !ok {
		return nil
	}
	// The service is called with r.mu held, so these are safe to read.
	if s := r.members.byID[id]; s != nil {
		return s.identity
	}
	if s := r.departing; s != nil && s.id == id {
		return s.identity
	}
	return nil
}

// full reports whether a client with token would be one too many for
// Config.MaxClientsPerRoom. A token that a connected client holds is never
// refused: the newcomer replaces that client.
func (r *Room) full(token string) bool {
	max := r.reg.cfg.MaxClientsPerRoom
	if max == NoLimit || int(r.members.count.Load())+r.members.pending < max {
		return false
	}
	return r.members.holder(token) == nil
}

// reserve holds the room open for a client between Join and Connect (the
// transport's handshake happens in between).
func (r *Room) reserve() {
	r.members.pending++
	r.grace.stop(r.reg.cfg.Owner)
}

// kickLocked closes s and queues its Disconnect, to run once the current
// event is handled. A slow consumer's queue is discarded: it is not reading.
func (r *Room) kickLocked(s *seat, code stateroom.CloseCode, reason string) {
	if s.state == attached {
		r.detach(s)
	}
	if s.member == nil || !s.member.Close(code, reason, code == stateroom.CloseSlowConsumer) {
		return // already closing: counted then
	}
	switch code {
	case stateroom.CloseSlowConsumer:
		r.reg.metrics.SlowConsumers.Inc()
	case stateroom.CloseHeartbeatTimeout:
		r.reg.metrics.HeartbeatTimeouts.Inc()
	}
}

func (r *Room) detach(s *seat) {
	r.members.detach(s)
	r.reg.metrics.Clients.Dec()
}

// deliver runs one event through the service, then whatever that event
// caused (Disconnects of kicked clients, a zero-delay timer).
func (r *Room) deliver(kind eventKind, s *seat, p stateroom.Payload) {
	if r.ended {
		return
	}
	r.call(kind, s, p)
	r.settle()
}

// settle runs the events queued while the room was locked, then starts the
// grace period if the room is empty.
func (r *Room) settle() {
	for !r.ended {
		if s := r.members.nextLeaving(); s != nil {
			if r.debugOn() {
				s.Logger().Debug("client disconnected")
			}
			r.disconnect(s)
			continue
		}
		if r.timerDue {
			r.timerDue = false
			r.call(evTimer, nil, stateroom.Payload{})
			continue
		}
		break
	}
	if r.ended || !r.members.empty() {
		return
	}
	switch g := r.reg.cfg.GracePeriod; g {
	case KeepForever:
	case EndImmediately:
		r.end(stateroom.CloseNormal, "", false)
	default:
		if !r.grace.armed() {
			r.grace.arm(r, g, func() { r.end(stateroom.CloseNormal, "", false) })
		}
	}
}

// disconnect delivers s's Disconnect; s has left the table, and departing
// keeps its identity reachable during the call.
func (r *Room) disconnect(s *seat) {
	r.departing = s
	r.call(evDisconnect, s, stateroom.Payload{})
	r.departing = nil
}

// call runs one service callback. A panic ends the room (see fault).
func (r *Room) call(kind eventKind, s *seat, p stateroom.Payload) {
	if r.sleeping != nil {
		// An ending room does not wake for its clients' Disconnects:
		// its state was saved when it fell asleep.
		if r.ended || kind == evInit || !r.wake(kind, s) {
			return
		}
	}
	if !r.inst.live() {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.fault(v, debug.Stack())
		}
	}()
	r.lastActivity.Store(time.Now().UnixNano())
	svc := r.inst.svc
	switch kind {
	case evInit:
		svc.Init(r, stateroom.InitEvent{Restored: r.restored, Clients: r.kept})
	case evConnect:
		svc.Connect(r, stateroom.ConnectEvent{Client: s.id, Identity: s.identity})
	case evDisconnect:
		svc.Disconnect(r, stateroom.DisconnectEvent{Client: s.id})
	case evMessage:
		svc.Message(r, stateroom.MessageEvent{Client: s.id, Payload: p})
	case evTimer:
		r.inTimer = true
		defer func() { r.inTimer = false }()
		svc.Timer(r, stateroom.TimerEvent{})
	}
	r.touched()
	r.armIdle()
}

// present returns the clients a new instance must be told of in its Init
// when the event kind about seat s is what wakes the room: every client in
// the table (attached, or leaving with its Disconnect still due), less s
// when its Connect is that event, plus s when its Disconnect is (s has
// already left the table). So every client the instance hears of later
// comes with a Connect it has not had yet or a Disconnect of a client it
// knows. Sorted by id.
func (r *Room) present(kind eventKind, s *seat) []stateroom.ClientID {
	ids := make([]stateroom.ClientID, 0, len(r.members.order)+1)
	for _, m := range r.members.order {
		if kind == evConnect && m == s {
			continue
		}
		ids = append(ids, m.id)
	}
	if kind == evDisconnect && s != nil {
		ids = append(ids, s.id)
	}
	slices.Sort(ids)
	return ids
}

// fault ends the room after its service panicked with v.
func (r *Room) fault(v any, stack []byte) {
	r.inst.faulted = true
	reason, kind := panicked(v)
	r.reg.metrics.Fault(kind)
	r.logger().Error("service panicked; ending the room", "panic", v, "stack", string(stack))
	r.end(stateroom.CloseServiceFault, reason, false)
}

// close ends the room from outside (operator, factory swap, shutdown),
// delivering every client's Disconnect. It reports false if the room had
// already ended.
func (r *Room) close(code stateroom.CloseCode, reason string) bool {
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
// Disconnect is delivered, the instance is closed, and the room leaves the
// registry. Called with mu held.
func (r *Room) end(code stateroom.CloseCode, reason string, notify bool) {
	if r.ended {
		return
	}
	r.ended = true
	r.endCode, r.endReason = code, reason
	o := r.reg.cfg.Owner
	attached := r.members.count.Load()
	due, members := r.members.clear()
	for _, s := range members {
		s.member.Close(code, reason, false)
	}
	r.reg.metrics.Clients.Sub(float64(attached))
	if notify {
		for _, s := range due {
			r.disconnect(s)
		}
	}
	// The last save, with the timer still pending: a room that ends with
	// its timer armed is woken at its deadline, in this process (it is
	// dormant, see dormant.go) or after a restart.
	r.save()
	wake := r.dormantDeadline(code)
	r.timer.stop(o)
	r.timerDue = false
	r.grace.stop(o)
	r.checkpoint.stop(o)
	r.idle.stop(o)
	r.sleeping = nil
	r.inst.close(r)
	r.reg.retire(r, wake)
	if f := r.reg.cfg.InstanceDropped; f != nil {
		f(true)
	}
	r.reg.metrics.RoomEnded(code)
	r.reg.metrics.Rooms.Dec()
	// An empty room ending is routine, like a client leaving; anything
	// else is worth a line at Info.
	if code != stateroom.CloseNormal {
		r.logger().Info("room ended", "code", int(code), "reason", reason)
	} else if r.debugOn() {
		r.logger().Debug("room ended", "code", int(code), "reason", reason)
	}
	o.Release() // the room's own count, from create
}

// memoryBytes asks the service for its memory (MemoryReporter) if the room
// is idle at this instant, and returns -1 otherwise.
func (r *Room) memoryBytes() int64 {
	if !r.mu.TryLock() {
		return -1
	}
	defer r.mu.Unlock()
	if r.ended {
		return -1
	}
	if r.sleeping != nil {
		return int64(len(r.sleeping))
	}
	return r.inst.memoryBytes(r)
}

// The Handle of the local placement.

// Connect implements Handle.
func (s *seat) Connect(m Member) {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	s.member = m
	if !r.ended {
		if old := r.members.holder(s.token); old != nil {
			r.kickLocked(old, stateroom.CloseReplaced, "replaced by a newer connection with the same token")
			r.settle() // its Disconnect comes before the new Connect
		}
		if id, ok := r.members.tokens[s.token]; ok && s.token != "" {
			s.id = id
		}
	}
	r.members.pending--
	if r.ended {
		s.state = gone
		m.Close(r.endCode, r.endReason, false)
		return
	}
	r.members.attach(s)
	r.reg.metrics.Clients.Inc()
	if r.debugOn() {
		s.Logger().Debug("client connected")
	}
	r.deliver(evConnect, s, stateroom.Payload{})
}

// Release implements Handle.
func (s *seat) Release() {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.state != reserved {
		return
	}
	s.state = gone
	r.members.pending--
	r.settle()
}

// Message implements Handle.
func (s *seat) Message(p stateroom.Payload) {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.state == attached {
		r.deliver(evMessage, s, p)
	}
}

// Leave implements Handle.
func (s *seat) Leave() {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.state == attached {
		r.detach(s)
		r.settle()
	}
}

// Kick implements Handle.
func (s *seat) Kick(code stateroom.CloseCode, reason string) {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kickLocked(s, code, reason)
	r.settle()
}

// Client implements Handle. The id is set by Connect before the transport
// starts the connection's goroutines, and never changes after.
func (s *seat) Client() stateroom.ClientID { return s.id }

// Logger implements Handle.
func (s *seat) Logger() *slog.Logger {
	if s.id == 0 { // not a member: its room ended before it joined
		return s.room.logger()
	}
	return s.room.logger().With("client", s.id)
}
