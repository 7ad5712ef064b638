package wasmhost

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// The ABI's vectors (internal/abi/ABI.md): bytes upstream's own types
// produce through bincode.
var toProcessVectors = []struct {
	name    string
	deliver func(s *service, r stateroom.Room)
	hex     string
}{
	{"Init", func(s *service, r stateroom.Room) { s.Init(r) }, "00000000"},
	{"Connect{7}", func(s *service, r stateroom.Room) { s.Connect(r, stateroom.ConnectEvent{Client: 7}) }, "0100000007000000"},
	{"Disconnect{7}", func(s *service, r stateroom.Room) { s.Disconnect(r, stateroom.DisconnectEvent{Client: 7}) }, "0200000007000000"},
	{"Message{3, Text(hi)}", func(s *service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: 3, Payload: stateroom.Text("hi")})
	}, "03000000030000000100000002000000000000006869"},
	{"Message{3, Bytes(010203)}", func(s *service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: 3, Payload: stateroom.Binary([]byte{1, 2, 3})})
	}, "0300000003000000000000000300000000000000010203"},
	{"Timer", func(s *service, r stateroom.Room) { s.Timer(r) }, "04000000"},
	{"Connect{4294967295}", func(s *service, r stateroom.Room) { s.Connect(r, stateroom.ConnectEvent{Client: 4294967295}) }, "01000000ffffffff"},
	{"Message{258, Bytes()}", func(s *service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: 258, Payload: stateroom.Binary(nil)})
	}, "0300000002010000000000000000000000000000"},
	{"Message{1, Text(é)}", func(s *service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("é")})
	}, "0300000001000000010000000200000000000000c3a9"},
}

// TestEventEncoding checks the bytes the guest receives for every event
// kind against the ABI's vectors: the relay guest broadcasts them back
// verbatim. It also checks that the host holds exactly one allocation after
// an event: the event buffer it keeps for the next events (see
// eventBuffer; it used to free every event's buffer, and this test then
// wanted none). More would be a leak.
func TestEventEncoding(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	for _, v := range toProcessVectors {
		t.Run(v.name, func(t *testing.T) {
			// A fresh room per vector: the relay passes a binary payload
			// on as a raw command, and these are not commands, so those
			// events end in a fault after the envelope.
			s := newService(t, m)
			live := s.mod.ExportedGlobal("live")
			room := &fakeRoom{}
			fault := catchFault(t, func() { v.deliver(s, room) })
			if len(room.sends) == 0 {
				t.Fatal("the guest sent nothing back")
			}
			got := room.sends[0]
			if got.To != stateroom.Everyone || !got.Payload.Binary {
				t.Fatalf("envelope is %v, want a binary broadcast", got)
			}
			if want := v.hex; hex.EncodeToString(got.Payload.Data) != want {
				t.Errorf("guest received %x, want %s", got.Payload.Data, want)
			}
			if fault != nil {
				if !strings.HasPrefix(v.name, "Message") || !strings.Contains(v.name, "Bytes") || !errors.Is(fault.Err, ErrSend) {
					t.Errorf("unexpected fault: %v", fault)
				}
				return
			}
			if n := int32(live.Get()); n != 1 {
				t.Errorf("%d allocations live after the event, want 1: the retained event buffer and nothing else", n)
			}
		})
	}
}

// TestSendRouting has the guest send each of the ABI's MessageFromProcess
// vectors and checks how the host routes them: every recipient kind, text
// kept as text and bytes as bytes, timers.
func TestSendRouting(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	room := &fakeRoom{}
	for _, v := range []struct {
		name   string
		hex    string
		want   []sent
		timers []time.Duration
	}{
		{"Broadcast Text(x)", "000000000000000001000000010000000000000078",
			[]sent{{stateroom.Everyone, stateroom.Text("x")}}, nil},
		{"Client(5) Bytes(09)", "00000000010000000500000000000000010000000000000009",
			[]sent{{stateroom.To(5), stateroom.Binary([]byte{9})}}, nil},
		{"EveryoneExcept(2) Text()", "000000000200000002000000010000000000000000000000",
			[]sent{{stateroom.EveryoneExcept(2), stateroom.Text("")}}, nil},
		{"Broadcast Text(new value: 1)", "0000000000000000010000000c000000000000006e65772076616c75653a2031",
			[]sent{{stateroom.Everyone, stateroom.Text("new value: 1")}}, nil},
		{"SetTimer 4000", "01000000a00f0000", nil, []time.Duration{4 * time.Second}},
		{"SetTimer 0", "0100000000000000", nil, []time.Duration{0}},
	} {
		t.Run(v.name, func(t *testing.T) {
			room.reset()
			s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, v.hex))})
			got := room.sends[1:] // after the envelope
			if len(got) != len(v.want) {
				t.Fatalf("sends %v, want %v", got, v.want)
			}
			for i := range got {
				if got[i].To != v.want[i].To || got[i].Payload.Binary != v.want[i].Payload.Binary ||
					!bytes.Equal(got[i].Payload.Data, v.want[i].Payload.Data) {
					t.Errorf("send %d is %v, want %v", i, got[i], v.want[i])
				}
			}
			if len(room.timers) != len(v.timers) || (len(v.timers) == 1 && room.timers[0] != v.timers[0]) {
				t.Errorf("timers %v, want %v", room.timers, v.timers)
			}
		})
	}
}

// TestLargeMessage delivers a message larger than the guest's initial
// memory: the guest's malloc grows memory and the bytes arrive intact.
func TestLargeMessage(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 000 bytes
	room := &fakeRoom{}
	s.Message(room, stateroom.MessageEvent{Client: 9, Payload: stateroom.Text(string(data))})
	if len(room.sends) != 1 {
		t.Fatalf("%d sends, want the envelope only", len(room.sends))
	}
	env := room.sends[0].Payload.Data
	if !bytes.Equal(env[20:], data) {
		t.Errorf("guest received %d bytes of payload, not the %d sent", len(env)-20, len(data))
	}
}

// TestInstancesAreIsolated checks that rooms get separate instances: state
// in one (the relay's allocation counter, mid-event) never shows in another,
// and closing one leaves the other running.
func TestInstancesAreIsolated(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	a, b := newService(t, m), newService(t, m)
	if a.mod == b.mod {
		t.Fatal("two rooms share one instance")
	}
	room := &fakeRoom{}
	a.Init(room)
	mustFault(t, "wasm trap", ErrTrap, func() {
		a.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("t")})
	})
	room.reset()
	b.Init(room)
	if len(room.sends) != 1 {
		t.Fatalf("room b: %d sends after a's fault, want 1", len(room.sends))
	}
}

// TestReactor loads a reactor: the host must call _initialize once, before
// any other export (the guest traps otherwise).
func TestReactor(t *testing.T) {
	m := loadGuest(t, "reactor", testOptions())
	for range 2 { // a second room runs its own _initialize
		s := newService(t, m)
		room := &fakeRoom{}
		s.Init(room)
		s.Connect(room, stateroom.ConnectEvent{Client: 1})
		if len(room.sends) != 2 || room.sends[1].Payload.String() != "ready" {
			t.Fatalf("sends %v, want two Text(ready)", room.sends)
		}
	}
}

// TestVersionFunctions loads a module that declares its version through
// the fallback functions instead of globals.
func TestVersionFunctions(t *testing.T) {
	m := loadGuest(t, "versionfunc", testOptions())
	s := newService(t, m)
	room := &fakeRoom{}
	s.Init(room)
	if len(room.sends) != 1 || room.sends[0].Payload.String() != "ready" || room.sends[0].Payload.Binary {
		t.Fatalf("sends %v, want Text(ready)", room.sends)
	}
}

// TestServiceIsCloser checks the io.Closer contract: Close is idempotent
// and later callbacks do nothing.
func TestServiceIsCloser(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	svc, err := m.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := svc.(io.Closer)
	if !ok {
		t.Fatal("service does not implement io.Closer")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	room := &fakeRoom{}
	svc.Init(room)
	if len(room.sends) != 0 {
		t.Fatalf("a closed service sent %v", room.sends)
	}
}
