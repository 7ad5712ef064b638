// Package stateroomtest provides a recording [stateroom.Room] for unit tests
// of services, as net/http/httptest does for handlers: drive a service's
// callbacks and inspect what it sent to whom, which clients it closed and
// the timer it set, with no server and no sockets.
//
// A [Room] is bound to the one service it runs, as a room of the runtime
// is: [NewRoom] starts it (Init), and its methods deliver the other events
// (Connect, Message, Disconnect, FireTimer), each returning once the
// service has handled it.
//
// The recorder keeps the room's membership the way the runtime does: a
// message for [stateroom.Everyone] reaches the clients connected when it
// was sent, a client the service closes leaves the room at once and gets
// its Disconnect once the current callback returns, and a Send to a client
// that is not connected is recorded as reaching no one.
//
// Calling a service's callbacks directly with the Room as their argument
// records their sends as well (for client ids the recorder would not hand
// out, say), but such calls are outside the room's membership: a message
// reaches only clients connected through the Room, and the Disconnect of a
// client closed during such a call waits for the next event the Room
// delivers.
//
// A Room is not safe for concurrent use, like the service it drives.
package stateroomtest

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/stateroom-go/stateroom"
)

// Room records what a service does with the room it is handed. It
// implements [stateroom.Room]. Build one with [NewRoom].
type Room struct {
	id      string
	svc     stateroom.Service
	clients []stateroom.ClientID // connected, in join order
	lastID  stateroom.ClientID
	closing []stateroom.ClientID // closed by the service, Disconnect due

	// Sent lists every message the service sent, in order.
	Sent []Sent
	// Closed lists every client the service closed, in order.
	Closed []Closed
	// Timer is the delay of the timer the service set last, and TimerSet
	// whether one is pending: SetTimer sets both, [Room.FireTimer] clears
	// TimerSet. The recorder never fires a timer by itself, not even one
	// set to zero: the test decides when time passes.
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

// String describes the message for a test's failure output, as in
// `to everyone, reached [1 2]: text "hi"`.
func (s Sent) String() string {
	kind := "text"
	if s.Payload.Binary {
		kind = "binary"
	}
	return fmt.Sprintf("to %v, reached %v: %s %s", s.To, s.Reached, kind, strconv.Quote(s.Payload.String()))
}

// Closed is one client a service closed with [stateroom.Room.Close].
type Closed struct {
	// Client is the client closed.
	Client stateroom.ClientID
	// Code is the close code the service gave.
	Code stateroom.CloseCode
	// Reason is the close reason, cut to [stateroom.MaxCloseReason] bytes
	// as the runtime cuts it.
	Reason string
}

// NewRoom starts a room with the given id that runs svc, as the runtime
// does when a room is created: it delivers Init before returning, so Sent
// and Timer already hold what Init did.
func NewRoom(id string, svc stateroom.Service) *Room {
	if svc == nil {
		panic("stateroomtest: NewRoom with a nil service")
	}
	r := &Room{id: id, svc: svc}
	svc.Init(r, stateroom.InitEvent{})
	r.settle()
	return r
}

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
// not use is an error and closes nothing, a client that is not connected is
// ignored, and a connected one leaves the room at once (messages sent after
// it reach it no more) and gets its Disconnect after the current callback.
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

// Connect connects a new client with the next id (1, 2, ...), delivers its
// Connect and returns the id.
func (r *Room) Connect() stateroom.ClientID { return r.ConnectIdentity(nil) }

// ConnectIdentity is [Room.Connect] for a client that the server's
// authentication hook gave identity (see [stateroom.ConnectEvent]).
func (r *Room) ConnectIdentity(identity any) stateroom.ClientID {
	r.lastID++
	id := r.lastID
	r.clients = append(r.clients, id)
	r.svc.Connect(r, stateroom.ConnectEvent{Client: id, Identity: identity})
	r.settle()
	return id
}

// Disconnect removes client id, as when it leaves, and delivers its
// Disconnect. It panics if id is not connected (never was, left already,
// or was closed by the service): the runtime never delivers that, so it is
// a mistake in the test.
func (r *Room) Disconnect(id stateroom.ClientID) {
	i := slices.Index(r.clients, id)
	if i < 0 {
		panic(fmt.Sprintf("stateroomtest: Disconnect of client %d, which is not connected (connected: %v)", id, r.clients))
	}
	r.clients = slices.Delete(r.clients, i, i+1)
	r.svc.Disconnect(r, stateroom.DisconnectEvent{Client: id})
	r.settle()
}

// Message delivers a message from client id. It panics if id is not
// connected: the runtime never delivers one.
func (r *Room) Message(id stateroom.ClientID, p stateroom.Payload) {
	if !slices.Contains(r.clients, id) {
		panic(fmt.Sprintf("stateroomtest: Message from client %d, which is not connected (connected: %v)", id, r.clients))
	}
	r.svc.Message(r, stateroom.MessageEvent{Client: id, Payload: p})
	r.settle()
}

// FireTimer fires the pending timer: it clears TimerSet and delivers
// Timer. It panics if no timer is set: the runtime never fires one.
func (r *Room) FireTimer() {
	if !r.TimerSet {
		panic("stateroomtest: FireTimer with no timer set")
	}
	r.TimerSet = false
	r.svc.Timer(r, stateroom.TimerEvent{})
	r.settle()
}

// settle delivers the Disconnects of the clients the service closed, one
// event after another as the runtime does; a Disconnect may close more.
func (r *Room) settle() {
	for len(r.closing) > 0 {
		id := r.closing[0]
		r.closing = r.closing[1:]
		r.svc.Disconnect(r, stateroom.DisconnectEvent{Client: id})
	}
}

// Received returns the messages that reached client id, in order, among
// those still in Sent: [Room.TakeSent] forgets them here too.
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
