package wasmhost

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// The ABI's vectors (internal/abi/ABI.md): bytes upstream's own types
// produce through bincode.
var toProcessVectors = []struct {
	name    string
	deliver func(s *service, r stateroom.Room)
	hex     string
}{
	{"Init", func(s *service, r stateroom.Room) { s.Init(r, stateroom.InitEvent{}) }, "00000000"},
	{"Connect{7}", func(s *service, r stateroom.Room) { s.Connect(r, stateroom.ConnectEvent{Client: 7}) }, "0100000007000000"},
	{"Disconnect{7}", func(s *service, r stateroom.Room) { s.Disconnect(r, stateroom.DisconnectEvent{Client: 7}) }, "0200000007000000"},
	{"Message{3, Text(hi)}", func(s *service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: 3, Payload: stateroom.Text("hi")})
	}, "03000000030000000100000002000000000000006869"},
	{"Message{3, Bytes(010203)}", func(s *service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: 3, Payload: stateroom.Binary([]byte{1, 2, 3})})
	}, "0300000003000000000000000300000000000000010203"},
	{"Timer", func(s *service, r stateroom.Room) { s.Timer(r, stateroom.TimerEvent{}) }, "04000000"},
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
			room := newRoom()
			fault := catchFault(t, func() { v.deliver(s, room) })
			if len(room.Sent) == 0 {
				t.Fatal("the guest sent nothing back")
			}
			got := room.Sent[0]
			if got.To != stateroom.Everyone || !got.Payload.Binary {
				t.Fatalf("envelope is %+v, want a binary broadcast", got)
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

// timerRoom is the recorder plus every delay SetTimer was called with:
// stateroomtest.Room keeps only the last one, and the routing tests check
// that one command sets the timer exactly once.
type timerRoom struct {
	*stateroomtest.Room
	timers []time.Duration
}

func (r *timerRoom) SetTimer(d time.Duration) {
	r.timers = append(r.timers, d)
	r.Room.SetTimer(d)
}

// TestSendRouting has the guest send each of the ABI's MessageFromProcess
// vectors and checks how the host routes them: every recipient kind, text
// kept as text and bytes as bytes, timers, closes.
func TestSendRouting(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	type message struct {
		to stateroom.Recipient
		p  stateroom.Payload
	}
	for _, v := range []struct {
		name   string
		hex    string
		want   []message
		timers []time.Duration
		closed []stateroomtest.Closed
	}{
		{"Broadcast Text(x)", "000000000000000001000000010000000000000078",
			[]message{{stateroom.Everyone, stateroom.Text("x")}}, nil, nil},
		{"Client(5) Bytes(09)", "00000000010000000500000000000000010000000000000009",
			[]message{{stateroom.To(5), stateroom.Binary([]byte{9})}}, nil, nil},
		{"EveryoneExcept(2) Text()", "000000000200000002000000010000000000000000000000",
			[]message{{stateroom.EveryoneExcept(2), stateroom.Text("")}}, nil, nil},
		{"Broadcast Text(new value: 1)", "0000000000000000010000000c000000000000006e65772076616c75653a2031",
			[]message{{stateroom.Everyone, stateroom.Text("new value: 1")}}, nil, nil},
		{"SetTimer 4000", "01000000a00f0000", nil, []time.Duration{4 * time.Second}, nil},
		{"SetTimer 0", "0100000000000000", nil, []time.Duration{0}, nil},
		{"Close(2, 4100, bye)", "020000000200000004100300000000000000627965", nil, nil,
			[]stateroomtest.Closed{{Client: 2, Code: 4100, Reason: "bye"}}},
		{"Close(2, 1000)", "0200000002000000e8030000000000000000", nil, nil,
			[]stateroomtest.Closed{{Client: 2, Code: stateroom.CloseNormal}}},
		{"Close(2, 4999, é)", "020000000200000087130200000000000000c3a9", nil, nil,
			[]stateroomtest.Closed{{Client: 2, Code: 4999, Reason: "é"}}},
	} {
		t.Run(v.name, func(t *testing.T) {
			room := &timerRoom{Room: newRoom()}
			connectClients(room.Room, 2)
			s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, v.hex))})
			if len(room.Sent) == 0 {
				t.Fatal("no envelope")
			}
			got := room.Sent[1:] // after the envelope
			if len(got) != len(v.want) {
				t.Fatalf("sends %+v, want %+v", got, v.want)
			}
			for i := range got {
				if got[i].To != v.want[i].to || got[i].Payload.Binary != v.want[i].p.Binary ||
					!bytes.Equal(got[i].Payload.Data, v.want[i].p.Data) {
					t.Errorf("send %d is %+v, want %+v", i, got[i], v.want[i])
				}
			}
			if !slices.Equal(room.timers, v.timers) {
				t.Errorf("timers %v, want %v", room.timers, v.timers)
			}
			if !slices.Equal(room.Closed, v.closed) {
				t.Errorf("closed %+v, want %+v", room.Closed, v.closed)
			}
		})
	}
}

// connectClients connects n clients (1, 2, ...) to a room from newRoom,
// which tells no service under test: the host's commands then reach
// clients that are there, as in a real room.
func connectClients(room *stateroomtest.Room, n int) {
	for range n {
		room.Connect()
	}
}

// closeCommand is the hex of the ABI's Close extension, built by hand from
// ABI.md rather than with internal/abi.
func closeCommand(client stateroom.ClientID, code uint16, reason string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	b = binary.LittleEndian.AppendUint32(b, uint32(client))
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(reason)))
	return append(b, reason...)
}

// TestGuestClose drives the Close extension: a close with a code a service
// may use closes the client, which gets its Disconnect after the event; a
// close of a client that is not there does nothing; a code a service may
// not use is ignored with one warning per room, and never faults the room.
func TestGuestClose(t *testing.T) {
	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := loadGuest(t, "relay", opts)
	s := newService(t, m)
	room := stateroomtest.NewRoom("test-room", s) // delivers Init
	a, b, c := room.Connect(), room.Connect(), room.Connect()
	room.TakeSent()

	closeFrom := func(from stateroom.ClientID, cmd []byte) {
		t.Helper()
		if fault := catchFault(t, func() { room.Message(from, stateroom.Binary(cmd)) }); fault != nil {
			t.Fatalf("Close %x faulted the room: %v", cmd, fault)
		}
	}

	// A code the guest may not use: ignored, logged once for the room.
	for _, code := range []uint16{0, 999, 1001, 1011, 3000, 4000, 4099, 5000, 65535} {
		closeFrom(a, closeCommand(b, code, "no"))
	}
	if len(room.Closed) != 0 {
		t.Fatalf("closes with codes a service may not use reached the room: %+v", room.Closed)
	}
	if got := logs.lines("level=WARN", "Close was ignored", "room=test-room"); len(got) != 1 {
		t.Fatalf("warning lines %q, want exactly one for the room", got)
	} else {
		wantInMessage(t, got[0], "code=0", "client=2")
	}

	// A client that is not connected: nothing, and no fault.
	closeFrom(a, closeCommand(99, 4100, "who"))
	if len(room.Closed) != 0 {
		t.Fatalf("closed %+v", room.Closed)
	}

	// A good close: the client leaves, with the reason cut to what a
	// close frame holds, and the guest gets its Disconnect once the event
	// is done (the relay broadcasts its envelope to those still there).
	long := strings.Repeat("x", 200)
	room.TakeSent()
	closeFrom(a, closeCommand(b, 4100, long))
	want := []stateroomtest.Closed{{Client: b, Code: 4100, Reason: long[:stateroom.MaxCloseReason]}}
	if !slices.Equal(room.Closed, want) {
		t.Fatalf("closed %+v, want %+v", room.Closed, want)
	}
	if got := room.Clients(); !slices.Equal(got, []stateroom.ClientID{a, c}) {
		t.Errorf("clients %v, want [%d %d]", got, a, c)
	}
	sent := room.TakeSent()
	if len(sent) != 2 || hex.EncodeToString(sent[1].Payload.Data) != "0200000002000000" || !slices.Equal(sent[1].Reached, []stateroom.ClientID{a, c}) {
		t.Errorf("after the close: sends %+v, want the Message envelope and then Disconnect{2}'s reaching 1 and 3", sent)
	}

	// Another room warns for itself.
	other := stateroomtest.NewRoom("test-room", newService(t, m))
	x := other.Connect()
	if fault := catchFault(t, func() { other.Message(x, stateroom.Binary(closeCommand(x, 1011, ""))) }); fault != nil {
		t.Fatal(fault)
	}
	if got := logs.lines("level=WARN", "Close was ignored"); len(got) != 2 {
		t.Errorf("warning lines %q, want one per room", got)
	}
}

// TestLargeMessage delivers a message larger than the guest's initial
// memory: the guest's malloc grows memory and the bytes arrive intact.
func TestLargeMessage(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 000 bytes
	room := newRoom()
	s.Message(room, stateroom.MessageEvent{Client: 9, Payload: stateroom.Text(string(data))})
	if len(room.Sent) != 1 {
		t.Fatalf("%d sends, want the envelope only", len(room.Sent))
	}
	env := room.Sent[0].Payload.Data
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
	room := newRoom()
	a.Init(room, stateroom.InitEvent{})
	mustFault(t, "wasm trap", ErrTrap, func() {
		a.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("t")})
	})
	room.TakeSent()
	b.Init(room, stateroom.InitEvent{})
	if len(room.Sent) != 1 {
		t.Fatalf("room b: %d sends after a's fault, want 1", len(room.Sent))
	}
}

// TestReactor loads a reactor: the host must call _initialize once, before
// any other export (the guest traps otherwise).
func TestReactor(t *testing.T) {
	m := loadGuest(t, "reactor", testOptions())
	for range 2 { // a second room runs its own _initialize
		s := newService(t, m)
		room := newRoom()
		s.Init(room, stateroom.InitEvent{})
		s.Connect(room, stateroom.ConnectEvent{Client: 1})
		if len(room.Sent) != 2 || room.Sent[1].Payload.String() != "ready" || room.Sent[1].Payload.Binary {
			t.Fatalf("sends %+v, want two Text(ready)", room.Sent)
		}
	}
}

// TestVersionFunctions loads a module that declares its version through
// the fallback functions instead of globals.
func TestVersionFunctions(t *testing.T) {
	m := loadGuest(t, "versionfunc", testOptions())
	s := newService(t, m)
	room := newRoom()
	s.Init(room, stateroom.InitEvent{})
	if len(room.Sent) != 1 || room.Sent[0].Payload.String() != "ready" || room.Sent[0].Payload.Binary {
		t.Fatalf("sends %+v, want Text(ready)", room.Sent)
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
	room := newRoom()
	svc.Init(room, stateroom.InitEvent{})
	if len(room.Sent) != 0 {
		t.Fatalf("a closed service sent %+v", room.Sent)
	}
}
