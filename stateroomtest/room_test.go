package stateroomtest_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

var _ stateroom.Room = (*stateroomtest.Room)(nil)

// script is a service whose callbacks a test sets: each logs its event,
// then runs the test's function for it, if any.
type script struct {
	log          []string
	init         func(stateroom.Room)
	connect      func(stateroom.Room, stateroom.ConnectEvent)
	message      func(stateroom.Room, stateroom.MessageEvent)
	disconnect   func(stateroom.Room, stateroom.DisconnectEvent)
	timer        func(stateroom.Room)
	lastIdentity any
}

func (s *script) Init(room stateroom.Room, _ stateroom.InitEvent) {
	s.log = append(s.log, "init")
	if s.init != nil {
		s.init(room)
	}
}

func (s *script) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	s.log = append(s.log, fmt.Sprintf("connect %d", ev.Client))
	s.lastIdentity = ev.Identity
	if s.connect != nil {
		s.connect(room, ev)
	}
}

func (s *script) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	s.log = append(s.log, fmt.Sprintf("disconnect %d", ev.Client))
	if s.disconnect != nil {
		s.disconnect(room, ev)
	}
}

func (s *script) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	s.log = append(s.log, fmt.Sprintf("message %d %s", ev.Client, ev.Payload))
	if s.message != nil {
		s.message(room, ev)
	}
}

func (s *script) Timer(room stateroom.Room, _ stateroom.TimerEvent) {
	s.log = append(s.log, "timer")
	if s.timer != nil {
		s.timer(room)
	}
}

// checkLog fails the test unless the service saw exactly want, in order.
func (s *script) checkLog(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(s.log, want) {
		t.Errorf("the service saw %q; want %q", s.log, want)
	}
}

// texts renders payloads as strings, binary ones marked, for comparisons.
func texts(ps []stateroom.Payload) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Binary {
			out = append(out, fmt.Sprintf("binary %x", p.Data))
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

// mustPanic fails the test unless f panics with a message containing
// want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic; want one saying %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panicked with %q; want it to say %q", msg, want)
		}
	}()
	f()
}

func TestNewRoomDeliversInit(t *testing.T) {
	svc := &script{init: func(room stateroom.Room) {
		room.Send(stateroom.Everyone, stateroom.Text("nobody hears this"))
		room.SetTimer(3 * time.Second)
	}}
	room := stateroomtest.NewRoom("lobby", svc)
	svc.checkLog(t, "init")
	if room.ID() != "lobby" {
		t.Errorf("ID() = %q, want lobby", room.ID())
	}
	if len(room.Sent) != 1 || room.Sent[0].Reached != nil {
		t.Errorf("Sent = %v; want the one message of Init, reaching no one (no client yet)", room.Sent)
	}
	if !room.TimerSet || room.Timer != 3*time.Second {
		t.Errorf("Timer = %v, TimerSet = %v; want the 3s Init set", room.Timer, room.TimerSet)
	}
	if c := room.Clients(); len(c) != 0 {
		t.Errorf("Clients() = %v in a new room", c)
	}
}

func TestMembership(t *testing.T) {
	svc := &script{}
	room := stateroomtest.NewRoom("r", svc)
	a, b, c := room.Connect(), room.Connect(), room.Connect()
	if a != 1 || b != 2 || c != 3 {
		t.Fatalf("ids %d %d %d; want 1 2 3 in join order", a, b, c)
	}
	room.Disconnect(b)
	if got := room.Clients(); !slices.Equal(got, []stateroom.ClientID{a, c}) {
		t.Errorf("Clients() = %v after b left; want [1 3]", got)
	}
	d := room.Connect()
	if d != 4 {
		t.Errorf("a client joining after 2 left got id %d; want 4 (ids are not reused)", d)
	}
	svc.checkLog(t, "init", "connect 1", "connect 2", "connect 3", "disconnect 2", "connect 4")

	// Clients() is a copy: changing it does not change the room.
	room.Clients()[0] = 99
	if got := room.Clients(); got[0] != a {
		t.Errorf("changing what Clients returned changed the room: %v", got)
	}

	// Who each kind of recipient reaches, among a, c and d.
	for _, tc := range []struct {
		to   stateroom.Recipient
		want []stateroom.ClientID
	}{
		{stateroom.Everyone, []stateroom.ClientID{a, c, d}},
		{stateroom.EveryoneExcept(c), []stateroom.ClientID{a, d}},
		{stateroom.To(d), []stateroom.ClientID{d}},
		{stateroom.To(b), nil}, // left: the message is dropped
		{stateroom.To(7), nil}, // never joined
	} {
		room.TakeSent()
		room.Send(tc.to, stateroom.Text("x"))
		if got := room.Sent[0]; got.To != tc.to || !slices.Equal(got.Reached, tc.want) {
			t.Errorf("a message to %v was recorded as %v; want it to reach %v", tc.to, got, tc.want)
		}
	}
}

func TestConnectIdentity(t *testing.T) {
	svc := &script{}
	room := stateroomtest.NewRoom("r", svc)
	type user struct{ name string }
	id := room.ConnectIdentity(user{"ada"})
	if svc.lastIdentity != (user{"ada"}) || id != 1 {
		t.Errorf("Connect delivered identity %v to client %d; want {ada} to client 1", svc.lastIdentity, id)
	}
	room.Connect()
	if svc.lastIdentity != nil {
		t.Errorf("Connect without an identity delivered %v; want nil", svc.lastIdentity)
	}
}

// TestCloseRefused: every code a service may not close a client with is an
// error wrapping ErrCloseCode, and the client stays, with no Disconnect.
func TestCloseRefused(t *testing.T) {
	for _, code := range []stateroom.CloseCode{
		0, 999, stateroom.CloseGoingAway, stateroom.CloseProtocolError, stateroom.CloseAbnormal,
		stateroom.CloseServiceFault, stateroom.CloseTryAgainLater, 2999, 3000, 3999,
		stateroom.CloseSlowConsumer, stateroom.CloseRoomClosed, 4099, 5000, 65535,
	} {
		t.Run(fmt.Sprint(uint16(code)), func(t *testing.T) {
			var err error
			svc := &script{message: func(room stateroom.Room, ev stateroom.MessageEvent) {
				err = room.Close(ev.Client, code, "no")
			}}
			room := stateroomtest.NewRoom("r", svc)
			a := room.Connect()
			room.Message(a, stateroom.Text("close me"))
			if !errors.Is(err, stateroom.ErrCloseCode) {
				t.Errorf("Close with %d returned %v; want an error wrapping ErrCloseCode", code, err)
			}
			if !slices.Equal(room.Clients(), []stateroom.ClientID{a}) || len(room.Closed) != 0 {
				t.Errorf("after a refused Close: clients %v, closed %v; want the client still there, nothing closed", room.Clients(), room.Closed)
			}
			svc.checkLog(t, "init", "connect 1", "message 1 close me")
		})
	}
}

// TestCloseAccepted: CloseNormal and 4100-4999 close the client: it
// leaves at once, messages after the Close do not reach it, and its
// Disconnect follows the callback that closed it.
func TestCloseAccepted(t *testing.T) {
	for _, code := range []stateroom.CloseCode{stateroom.CloseNormal, stateroom.FirstServiceCloseCode, 4321, stateroom.LastServiceCloseCode} {
		t.Run(fmt.Sprint(uint16(code)), func(t *testing.T) {
			var err error
			svc := &script{}
			svc.message = func(room stateroom.Room, ev stateroom.MessageEvent) {
				room.Send(stateroom.Everyone, stateroom.Text("before"))
				err = room.Close(ev.Client, code, "bye")
				svc.log = append(svc.log, "closed")
				room.Send(stateroom.Everyone, stateroom.Text("after"))
			}
			room := stateroomtest.NewRoom("r", svc)
			a, b := room.Connect(), room.Connect()
			room.Message(a, stateroom.Text("close me"))
			if err != nil {
				t.Fatalf("Close with %d: %v", code, err)
			}
			want := []stateroomtest.Closed{{Client: a, Code: code, Reason: "bye"}}
			if !slices.Equal(room.Closed, want) {
				t.Errorf("Closed = %v; want %v", room.Closed, want)
			}
			if got := room.Clients(); !slices.Equal(got, []stateroom.ClientID{b}) {
				t.Errorf("Clients() = %v; want only b", got)
			}
			if got := texts(room.Received(a)); !slices.Equal(got, []string{"before"}) {
				t.Errorf("the closed client received %q; want only what was sent before the Close", got)
			}
			if got := texts(room.Received(b)); !slices.Equal(got, []string{"before", "after"}) {
				t.Errorf("the other client received %q; want both messages", got)
			}
			svc.checkLog(t, "init", "connect 1", "connect 2", "message 1 close me", "closed", "disconnect 1")
		})
	}
}

// TestCloseOnce: a client closed twice in one callback, or one not
// connected, is closed once or not at all, without an error.
func TestCloseOnce(t *testing.T) {
	svc := &script{}
	svc.message = func(room stateroom.Room, ev stateroom.MessageEvent) {
		for _, id := range []stateroom.ClientID{ev.Client, ev.Client, 42} {
			if err := room.Close(id, 4100, ""); err != nil {
				t.Errorf("Close(%d): %v", id, err)
			}
		}
	}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.Message(a, stateroom.Text("x"))
	if len(room.Closed) != 1 || room.Closed[0].Client != a {
		t.Errorf("Closed = %v; want client 1 once", room.Closed)
	}
	svc.checkLog(t, "init", "connect 1", "message 1 x", "disconnect 1")
}

func TestCloseReasonIsCut(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	svc := &script{connect: func(room stateroom.Room, ev stateroom.ConnectEvent) {
		room.Close(ev.Client, stateroom.CloseNormal, long)
	}}
	room := stateroomtest.NewRoom("r", svc)
	room.Connect()
	if got := room.Closed[0].Reason; got != stateroom.TruncateReason(long) || len(got) > stateroom.MaxCloseReason {
		t.Errorf("reason of %d bytes recorded as %d bytes %q; want it cut as the runtime cuts it", len(long), len(got), got)
	}
}

// TestCloseInEveryCallback: whichever callback closes a client, its
// Disconnect comes right after that callback, and a Disconnect that closes
// another client is followed by that one's.
func TestCloseInEveryCallback(t *testing.T) {
	svc := &script{}
	closeOther := func(room stateroom.Room, id stateroom.ClientID) {
		if err := room.Close(id, stateroom.CloseNormal, ""); err != nil {
			t.Error(err)
		}
	}
	svc.connect = func(room stateroom.Room, ev stateroom.ConnectEvent) {
		if ev.Client == 2 {
			closeOther(room, 2) // closed as it joins
		}
	}
	svc.init = func(room stateroom.Room) { room.SetTimer(time.Second) }
	svc.timer = func(room stateroom.Room) { closeOther(room, 1) }
	svc.disconnect = func(room stateroom.Room, ev stateroom.DisconnectEvent) {
		if ev.Client == 1 {
			closeOther(room, 3) // one leaving takes another with it
		}
	}
	room := stateroomtest.NewRoom("r", svc)
	room.Connect()
	room.Connect()
	room.Connect()
	room.FireTimer()
	svc.checkLog(t, "init", "connect 1", "connect 2", "disconnect 2", "connect 3", "timer", "disconnect 1", "disconnect 3")
	if len(room.Clients()) != 0 || len(room.Closed) != 3 {
		t.Errorf("clients %v, closed %v; want everyone closed", room.Clients(), room.Closed)
	}
}

func TestDisconnectAfterClose(t *testing.T) {
	svc := &script{message: func(room stateroom.Room, ev stateroom.MessageEvent) {
		room.Close(ev.Client, stateroom.CloseNormal, "")
	}}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.Message(a, stateroom.Text("close me"))
	mustPanic(t, "Disconnect of client 1, which is not connected", func() { room.Disconnect(a) })
	// The service got its one Disconnect, from the Close, not a second.
	svc.checkLog(t, "init", "connect 1", "message 1 close me", "disconnect 1")
}

func TestReceived(t *testing.T) {
	svc := &script{
		connect: func(room stateroom.Room, ev stateroom.ConnectEvent) {
			room.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("welcome %d", ev.Client)))
			room.Send(stateroom.EveryoneExcept(ev.Client), stateroom.Text(fmt.Sprintf("%d joined", ev.Client)))
		},
		message: func(room stateroom.Room, ev stateroom.MessageEvent) { room.Send(stateroom.Everyone, ev.Payload) },
	}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	b := room.Connect()
	room.Message(b, stateroom.Binary([]byte{0, 0xff}))
	room.Disconnect(a)
	room.Message(b, stateroom.Text("alone"))
	if got, want := texts(room.Received(a)), []string{"welcome 1", "2 joined", "binary 00ff"}; !slices.Equal(got, want) {
		t.Errorf("a received %q; want %q", got, want)
	}
	if got, want := texts(room.Received(b)), []string{"welcome 2", "binary 00ff", "alone"}; !slices.Equal(got, want) {
		t.Errorf("b received %q; want %q", got, want)
	}
	if got := room.Received(99); got != nil {
		t.Errorf("a client that never joined received %q", texts(got))
	}
}

// TestSendCopies: the recorder keeps a copy of each payload, so a service
// that reuses its buffer after Send (as Room.Send allows) does not change
// what was recorded.
func TestSendCopies(t *testing.T) {
	buf := []byte("first")
	svc := &script{message: func(room stateroom.Room, ev stateroom.MessageEvent) {
		room.Send(stateroom.To(ev.Client), stateroom.Binary(buf))
		copy(buf, "XXXXX")
	}}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.Message(a, stateroom.Text("go"))
	if got := room.Sent[0].Payload; string(got.Data) != "first" || !got.Binary {
		t.Errorf("recorded %v; want binary \"first\" as it was when sent", room.Sent[0])
	}
}

func TestTakeSent(t *testing.T) {
	svc := &script{message: func(room stateroom.Room, ev stateroom.MessageEvent) {
		room.Send(stateroom.Everyone, ev.Payload)
	}}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.Message(a, stateroom.Text("one"))
	room.Message(a, stateroom.Text("two"))
	got := room.TakeSent()
	if len(got) != 2 || got[0].Payload.String() != "one" || got[1].Payload.String() != "two" {
		t.Fatalf("TakeSent() = %v; want one, two", got)
	}
	if room.Sent != nil || room.TakeSent() != nil {
		t.Errorf("after TakeSent, Sent = %v; want it empty", room.Sent)
	}
	room.Message(a, stateroom.Text("three"))
	if got := room.TakeSent(); len(got) != 1 || got[0].Payload.String() != "three" {
		t.Errorf("TakeSent() = %v; want only what came after the last one", got)
	}
	// Received reads Sent: what was taken is forgotten there too.
	if got := room.Received(a); got != nil {
		t.Errorf("Received after TakeSent = %q; want nothing", texts(got))
	}
}

func TestFireTimer(t *testing.T) {
	ticks := 0
	svc := &script{}
	svc.init = func(room stateroom.Room) { room.SetTimer(time.Second) }
	svc.timer = func(room stateroom.Room) {
		ticks++
		room.Send(stateroom.Everyone, stateroom.Text(fmt.Sprint("tick ", ticks)))
		if ticks < 2 {
			room.SetTimer(2 * time.Second)
		}
	}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.FireTimer()
	if !room.TimerSet || room.Timer != 2*time.Second {
		t.Errorf("after a Timer that set it again: Timer %v, TimerSet %v; want 2s pending", room.Timer, room.TimerSet)
	}
	room.FireTimer()
	if room.TimerSet {
		t.Error("TimerSet after a Timer that did not set it again")
	}
	if got := texts(room.Received(a)); !slices.Equal(got, []string{"tick 1", "tick 2"}) {
		t.Errorf("received %q; want tick 1, tick 2", got)
	}
	mustPanic(t, "FireTimer with no timer set", room.FireTimer)
	svc.checkLog(t, "init", "connect 1", "timer", "timer")
}

// TestMisusePanics: what the runtime never does, the recorder refuses
// loudly instead of recording a state a real room cannot reach.
func TestMisusePanics(t *testing.T) {
	svc := &script{}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.Disconnect(a)
	mustPanic(t, "Message from client 1, which is not connected", func() { room.Message(a, stateroom.Text("x")) })
	mustPanic(t, "Message from client 5, which is not connected", func() { room.Message(5, stateroom.Text("x")) })
	mustPanic(t, "Disconnect of client 1, which is not connected", func() { room.Disconnect(a) })
	mustPanic(t, "FireTimer with no timer set", room.FireTimer)
	mustPanic(t, "nil service", func() { stateroomtest.NewRoom("r", nil) })
	// None of them reached the service.
	svc.checkLog(t, "init", "connect 1", "disconnect 1")
}

func TestSentString(t *testing.T) {
	svc := &script{connect: func(room stateroom.Room, ev stateroom.ConnectEvent) {
		room.Send(stateroom.Everyone, stateroom.Text(`say "hi"`))
		room.Send(stateroom.To(9), stateroom.Binary([]byte{1}))
	}}
	room := stateroomtest.NewRoom("r", svc)
	room.Connect()
	for i, want := range []string{`to everyone, reached [1]: text "say \"hi\""`, `to client 9, reached []: binary "\x01"`} {
		if got := room.Sent[i].String(); got != want {
			t.Errorf("Sent[%d].String() = %s; want %s", i, got, want)
		}
	}
}
