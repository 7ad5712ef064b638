// Package stateroomtest provides a recording [stateroom.Room] for unit tests
// of services, as net/http/httptest does for handlers: drive a service's
// callbacks directly and inspect what it sent to whom, which clients it
// closed and the timer it set, with no server and no sockets.
//
// The recorder keeps the room's membership the way the runtime does: a
// message for [stateroom.Everyone] reaches the clients connected when it
// was sent, a client the service closes leaves the room and gets its
// Disconnect once the current callback returns, and a Send to a client
// that is not connected is recorded as reaching no one.
//
// A Room is not safe for concurrent use, like the service it drives.
package stateroomtest

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/stateroom-go/stateroom"
)

// Room records what a service does with the room it is handed. It
// implements [stateroom.Room]. Build one with [NewRoom].
type Room struct {
	id      string
	clients []stateroom.ClientID // connected, in join order
	lastID  stateroom.ClientID
	closing []stateroom.ClientID // closed by the service, Disconnect due

	// Sent lists every message the service sent, in order.
	Sent []Sent
	// Closed lists every client the service closed, in order.
	Closed []Closed
	// Timer is the delay of the timer the service set last, and TimerSet
	// whether one is pending: SetTimer sets both, [Room.FireTimer] clears
	// TimerSet.
	Timer    time.Duration
	TimerSet bool
}

// Sent is one message a service sent.
type Sent struct {
	// To is the recipient the service named.
	To stateroom.Recipient
	// Payload is a copy of the message.
	Payload stateroom.Payload
	// Reached lists the clients connected when it was sent that To
	// includes, in join order.
	Reached []stateroom.ClientID
}

// Closed is one client a service closed with [stateroom.Room.Close].
type Closed struct {
	Client stateroom.ClientID
	Code   stateroom.CloseCode
	Reason string
}

// NewRoom returns an empty room with the given id.
func NewRoom(id string) *Room { return &Room{id: id} }

// ID implements stateroom.Room.
func (r *Room) ID() string { return r.id }

// Send implements stateroom.Room: it records a copy of p and the clients it
// reaches.
func (r *Room) Send(to stateroom.Recipient, p stateroom.Payload) {
	s := Sent{To: to, Payload: stateroom.Payload{Data: bytes.Clone(p.Data), Binary: p.Binary}}
	for _, c := range r.clients {
		if to.Includes(c) {
			s.Reached = append(s.Reached, c)
		}
	}
	r.Sent = append(r.Sent, s)
}

// SetTimer implements stateroom.Room.
func (r *Room) SetTimer(d time.Duration) {
	r.Timer, r.TimerSet = d, true
}

// Close implements stateroom.Room as the runtime does: a code a service may
// not use is an error, a client that is not connected is ignored, and a
// connected one leaves the room (its Disconnect follows the current
// callback).
func (r *Room) Close(id stateroom.ClientID, code stateroom.CloseCode, reason string) error {
	if err := stateroom.CheckServiceClose(code); err != nil {
		return err
	}
	i := slices.Index(r.clients, id)
	if i < 0 {
		return nil
	}
	r.clients = slices.Delete(r.clients, i, i+1)
	r.closing = append(r.closing, id)
	r.Closed = append(r.Closed, Closed{Client: id, Code: code, Reason: stateroom.TruncateReason(reason)})
	return nil
}

// Clients returns the clients connected now, in join order.
func (r *Room) Clients() []stateroom.ClientID { return slices.Clone(r.clients) }

// Init delivers the Init event to svc.
func (r *Room) Init(svc stateroom.Service) {
	svc.Init(r, stateroom.InitEvent{})
	r.settle(svc)
}

// Connect connects a new client, with the next id (1, 2, ...), delivers
// its Connect to svc and returns the id.
func (r *Room) Connect(svc stateroom.Service) stateroom.ClientID {
	r.lastID++
	id := r.lastID
	r.clients = append(r.clients, id)
	svc.Connect(r, stateroom.ConnectEvent{Client: id})
	r.settle(svc)
	return id
}

// Disconnect removes client id and delivers its Disconnect to svc. It
// panics if id is not connected: that is a mistake in the test.
func (r *Room) Disconnect(svc stateroom.Service, id stateroom.ClientID) {
	i := slices.Index(r.clients, id)
	if i < 0 {
		panic(fmt.Sprintf("stateroomtest: Disconnect of client %d, which is not connected (connected: %v)", id, r.clients))
	}
	r.clients = slices.Delete(r.clients, i, i+1)
	svc.Disconnect(r, stateroom.DisconnectEvent{Client: id})
	r.settle(svc)
}

// Message delivers a message from client id to svc. It panics if id is not
// connected: the runtime never delivers one.
func (r *Room) Message(svc stateroom.Service, id stateroom.ClientID, p stateroom.Payload) {
	if !slices.Contains(r.clients, id) {
		panic(fmt.Sprintf("stateroomtest: Message from client %d, which is not connected (connected: %v)", id, r.clients))
	}
	svc.Message(r, stateroom.MessageEvent{Client: id, Payload: p})
	r.settle(svc)
}

// FireTimer fires the pending timer: it clears TimerSet and delivers
// Timer to svc. It panics if no timer is set: the runtime never fires one.
func (r *Room) FireTimer(svc stateroom.Service) {
	if !r.TimerSet {
		panic("stateroomtest: FireTimer with no timer set")
	}
	r.TimerSet = false
	svc.Timer(r, stateroom.TimerEvent{})
	r.settle(svc)
}

// settle delivers the Disconnects of the clients the service closed.
func (r *Room) settle(svc stateroom.Service) {
	for len(r.closing) > 0 {
		id := r.closing[0]
		r.closing = r.closing[1:]
		svc.Disconnect(r, stateroom.DisconnectEvent{Client: id})
	}
}

// Received returns the messages that reached client id, in order.
func (r *Room) Received(id stateroom.ClientID) []stateroom.Payload {
	var out []stateroom.Payload
	for _, s := range r.Sent {
		if slices.Contains(s.Reached, id) {
			out = append(out, s.Payload)
		}
	}
	return out
}

// TakeSent returns the messages sent so far and forgets them, so a test can
// check each step's output on its own.
func (r *Room) TakeSent() []Sent {
	s := r.Sent
	r.Sent = nil
	return s
}
