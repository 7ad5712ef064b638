package guest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// recorder is a service that records the events it gets and answers with
// the room's Send and SetTimer as told by fields.
type recorder struct {
	events []string
	roomID string
}

func (r *recorder) Init(room stateroom.Room, _ stateroom.InitEvent) {
	r.events = append(r.events, "init "+room.ID())
	room.Send(stateroom.Everyone, stateroom.Text("x"))
}

func (r *recorder) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	r.events = append(r.events, "connect "+ev.Client.String())
	room.Send(stateroom.To(5), stateroom.Binary([]byte{9}))
}

func (r *recorder) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	r.events = append(r.events, "disconnect "+ev.Client.String())
	room.Send(stateroom.EveryoneExcept(2), stateroom.Text(""))
}

func (r *recorder) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	kind := "text"
	if ev.Payload.Binary {
		kind = "binary"
	}
	r.events = append(r.events, "message "+ev.Client.String()+" "+kind+" "+ev.Payload.String())
	room.SetTimer(4 * time.Second)
}

func (r *recorder) Timer(room stateroom.Room, _ stateroom.TimerEvent) {
	r.events = append(r.events, "timer")
	room.SetTimer(0)
}

// newTestGuest returns a guest whose service is a recorder and whose sends
// are collected as hex.
func newTestGuest(t *testing.T) (*guest, *recorder, *[]string) {
	t.Helper()
	rec := &recorder{}
	var sent []string
	g := &guest{buffers: map[uintptr][]byte{}, send: func(b []byte) { sent = append(sent, hex.EncodeToString(b)) }}
	g.register(stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
		rec.roomID = id
		return rec, nil
	}))
	return g, rec, &sent
}

// deliver hands g one event as a host does: malloc, write, recv, free.
func deliver(g *guest, ev abi.Event) {
	b := abi.AppendEvent(nil, ev)
	p := g.malloc(uint32(len(b)))
	buf := unsafe.Slice(p, len(b))
	copy(buf, b)
	g.recv(buf)
	g.free(uintptr(unsafe.Pointer(p)), uint32(len(b)))
}

// TestEventsAndCommands checks each event reaches the matching callback and
// each Send and SetTimer leaves the guest as the bytes ABI.md lists.
func TestEventsAndCommands(t *testing.T) {
	g, rec, sent := newTestGuest(t)
	deliver(g, abi.Event{Kind: abi.EventInit})
	deliver(g, abi.Event{Kind: abi.EventConnect, Client: 7})
	deliver(g, abi.Event{Kind: abi.EventMessage, Client: 3, Payload: stateroom.Text("hi")})
	deliver(g, abi.Event{Kind: abi.EventMessage, Client: 3, Payload: stateroom.Binary([]byte{1, 2, 3})})
	deliver(g, abi.Event{Kind: abi.EventDisconnect, Client: 7})
	deliver(g, abi.Event{Kind: abi.EventTimer})

	wantEvents := []string{"init ", "connect 7", "message 3 text hi", "message 3 binary \x01\x02\x03", "disconnect 7", "timer"}
	if strings.Join(rec.events, "|") != strings.Join(wantEvents, "|") {
		t.Errorf("events:\n got %q\nwant %q", rec.events, wantEvents)
	}
	// Vectors from internal/abi/ABI.md.
	wantSent := []string{
		"000000000000000001000000010000000000000078",         // Message{Broadcast, Text("x")}
		"00000000010000000500000000000000010000000000000009", // Message{Client(5), Bytes([9])}
		"01000000a00f0000", // SetTimer{4000}
		"01000000a00f0000", // SetTimer{4000}
		"000000000200000002000000010000000000000000000000", // Message{EveryoneExcept(2), Text("")}
		"0100000000000000", // SetTimer{0}
	}
	if strings.Join(*sent, "|") != strings.Join(wantSent, "|") {
		t.Errorf("sent:\n got %q\nwant %q", *sent, wantSent)
	}
	if len(g.buffers) != 0 {
		t.Errorf("%d buffers still held after every event was freed", len(g.buffers))
	}
}

// closer is a service that closes a client from Message, with the code
// and reason the test sets, and keeps what Close returned.
type closer struct {
	stateroom.BaseService
	client stateroom.ClientID
	code   stateroom.CloseCode
	reason string
	err    error
}

func (c *closer) Message(room stateroom.Room, _ stateroom.MessageEvent) {
	c.err = room.Close(c.client, c.code, c.reason)
}

// TestRoomClose checks Room.Close leaves the guest as the ABI's Close
// extension (the vectors of ABI.md), with the reason cut as the runtime
// cuts it, and that a code a service may not use is refused with
// stateroom.ErrCloseCode and sends nothing.
func TestRoomClose(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: cut to 122, a rune boundary
	for _, tc := range []struct {
		name   string
		svc    closer
		want   string // hex of the command; "" for none
		reason string // the reason the command carries
		err    error
	}{
		{"vector", closer{client: 5, code: 4100, reason: "bye"}, "020000000500000004100300000000000000627965", "bye", nil},
		{"normal, no reason", closer{client: 1, code: stateroom.CloseNormal}, "0200000001000000e8030000000000000000", "", nil},
		{"last code", closer{client: 4294967295, code: 4999, reason: "é"}, "02000000ffffffff87130200000000000000c3a9", "é", nil},
		{"long reason", closer{client: 2, code: 4100, reason: long}, "", long[:122], nil},
		{"runtime's code", closer{client: 2, code: stateroom.CloseServiceFault}, "", "", stateroom.ErrCloseCode},
		{"protocol code", closer{client: 2, code: stateroom.CloseGoingAway}, "", "", stateroom.ErrCloseCode},
		{"below the service range", closer{client: 2, code: 4099}, "", "", stateroom.ErrCloseCode},
		{"above the service range", closer{client: 2, code: 5000}, "", "", stateroom.ErrCloseCode},
		{"zero", closer{client: 2}, "", "", stateroom.ErrCloseCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent [][]byte
			g := &guest{buffers: map[uintptr][]byte{}, send: func(b []byte) { sent = append(sent, bytes.Clone(b)) }}
			svc := tc.svc
			g.service = &svc
			deliver(g, abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text("x")})
			if tc.err != nil {
				if !errors.Is(svc.err, tc.err) {
					t.Errorf("Close returned %v, want an error wrapping %v", svc.err, tc.err)
				}
				if len(sent) != 0 {
					t.Errorf("a refused Close sent %x", sent)
				}
				return
			}
			if svc.err != nil {
				t.Fatalf("Close returned %v", svc.err)
			}
			if len(sent) != 1 {
				t.Fatalf("sent %d commands, want one Close", len(sent))
			}
			if tc.want != "" && hex.EncodeToString(sent[0]) != tc.want {
				t.Errorf("sent %x, want %s", sent[0], tc.want)
			}
			c, err := abi.DecodeCommand(sent[0])
			if err != nil || c.Kind != abi.CommandClose || c.Client != svc.client || c.Code != svc.code || c.Reason != tc.reason {
				t.Errorf("sent %+v (err %v), want Close{%d, %d, %q}", c, err, svc.client, svc.code, tc.reason)
			}
		})
	}
}

// TestRoomIDFromFreedBuffer checks the guest learns the room id from the
// buffer upstream's host writes and frees before the first event, and only
// from that one.
func TestRoomIDFromFreedBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before [][]byte // buffers written and freed before Init
		want   string
	}{
		{"no id written", nil, ""},
		{"id written", [][]byte{[]byte("game/42")}, "game/42"},
		{"not UTF-8 is ignored", [][]byte{{0xff, 0xfe}}, ""},
		{"empty id", [][]byte{{}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, rec, _ := newTestGuest(t)
			for _, b := range tc.before {
				p := g.malloc(uint32(len(b)))
				if len(b) > 0 {
					copy(unsafe.Slice(p, len(b)), b)
				}
				g.free(uintptr(unsafe.Pointer(p)), uint32(len(b)))
			}
			deliver(g, abi.Event{Kind: abi.EventInit})
			if rec.roomID != tc.want {
				t.Errorf("factory got room id %q, want %q", rec.roomID, tc.want)
			}
			if rec.events[0] != "init "+tc.want {
				t.Errorf("Room.ID in Init: %q, want %q", rec.events[0], "init "+tc.want)
			}
			// A buffer freed after the first event is a message, not an id.
			p := g.malloc(3)
			copy(unsafe.Slice(p, 3), "xyz")
			g.free(uintptr(unsafe.Pointer(p)), 3)
			if g.roomID != tc.want {
				t.Errorf("room id changed to %q after the first event", g.roomID)
			}
		})
	}
}

func TestMallocFree(t *testing.T) {
	g, _, _ := newTestGuest(t)
	if p := g.malloc(0); p != nil {
		t.Errorf("malloc(0) = %p, want nil", p)
	}
	a := g.malloc(100)
	b := g.malloc(100)
	if a == b {
		t.Fatal("two live buffers share an address")
	}
	if len(g.buffers) != 2 {
		t.Fatalf("%d buffers tracked, want 2", len(g.buffers))
	}
	g.free(uintptr(unsafe.Pointer(a)), 100)
	g.free(uintptr(unsafe.Pointer(a)), 100) // double free: ignored
	g.free(12345, 10)                       // unknown address: ignored
	g.free(uintptr(unsafe.Pointer(b)), 0)   // size 0 is a no-op
	if len(g.buffers) != 1 {
		t.Fatalf("%d buffers tracked, want 1", len(g.buffers))
	}
	// The freed buffer is reused by the next malloc it fits.
	if c := g.malloc(50); c != a {
		t.Errorf("malloc(50) after free did not reuse the spare buffer")
	}
	// Buffers past spareMax are not kept.
	big := g.malloc(spareMax + 1)
	g.free(uintptr(unsafe.Pointer(big)), spareMax+1)
	if cap(g.spare) > spareMax {
		t.Errorf("spare buffer of %d bytes kept, bound is %d", cap(g.spare), spareMax)
	}
}

// TestNoGrowthOverManyEvents checks the tracked buffers stay at zero and
// the heap flat over many events (the native half of the leak check; the
// module tests repeat it inside WebAssembly).
func TestNoGrowthOverManyEvents(t *testing.T) {
	g, _, _ := newTestGuest(t)
	g.service = stateroom.BaseService{} // no recording: nothing grows on purpose
	ev := abi.AppendEvent(nil, abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text("hello")})
	allocs := testing.AllocsPerRun(10000, func() {
		p := g.malloc(uint32(len(ev)))
		buf := unsafe.Slice(p, len(ev))
		copy(buf, ev)
		g.recv(buf)
		g.free(uintptr(unsafe.Pointer(p)), uint32(len(ev)))
	})
	if len(g.buffers) != 0 {
		t.Errorf("%d buffers left", len(g.buffers))
	}
	if allocs > 0 {
		t.Errorf("%.1f allocations per event, want 0 (the spare buffer should be reused)", allocs)
	}
}

// TestABIValuesLayout checks the variable internal/wasmpatch looks for is 28
// contiguous bytes holding the ABI's version and protocol.
func TestABIValuesLayout(t *testing.T) {
	if size := unsafe.Sizeof(abiValues); size != 28 {
		t.Errorf("abiValues is %d bytes, want 28 (no padding)", size)
	}
	if abiValues.version != abi.Version || abiValues.protocol != abi.Protocol {
		t.Errorf("abiValues holds %d/%d, want %d/%d", abiValues.version, abiValues.protocol, abi.Version, abi.Protocol)
	}
	if abiValues.head[0] == 0 {
		t.Error("abiValues starts with a zero byte, which the Go linker leaves out of the data segments")
	}
}

func TestDelayMS(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want uint32
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 2},
		{4 * time.Second, 4000},
		{math.MaxInt64, math.MaxUint32},
	} {
		if got := delayMS(tc.d); got != tc.want {
			t.Errorf("delayMS(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// mustPanic runs f and returns what it panicked with.
func mustPanic(t *testing.T, f func()) (v any) {
	t.Helper()
	defer func() { v = recover() }()
	f()
	t.Fatal("no panic")
	return nil
}

func TestMisuse(t *testing.T) {
	t.Run("nil factory", func(t *testing.T) {
		g := &guest{}
		v := mustPanic(t, func() { g.register(nil) })
		if !strings.Contains(v.(string), "nil factory") {
			t.Errorf("panic %q does not name the mistake", v)
		}
	})
	t.Run("register twice", func(t *testing.T) {
		g, _, _ := newTestGuest(t)
		v := mustPanic(t, func() {
			g.register(stateroom.New(func(string) stateroom.BaseService { return stateroom.BaseService{} }))
		})
		if !strings.Contains(v.(string), "twice") {
			t.Errorf("panic %q does not name the mistake", v)
		}
	})
	t.Run("nothing registered", func(t *testing.T) {
		g := &guest{buffers: map[uintptr][]byte{}}
		v := mustPanic(t, func() { g.recv(abi.AppendEvent(nil, abi.Event{Kind: abi.EventInit})) })
		if !strings.Contains(v.(string), "guest.Register") {
			t.Errorf("panic %q does not say what to do", v)
		}
	})
	t.Run("factory error", func(t *testing.T) {
		g := &guest{buffers: map[uintptr][]byte{}}
		cause := errors.New("no such game")
		g.register(stateroom.FactoryFunc(func(string) (stateroom.Service, error) { return nil, cause }))
		v := mustPanic(t, func() { g.recv(abi.AppendEvent(nil, abi.Event{Kind: abi.EventInit})) })
		f, ok := v.(*stateroom.Fault)
		if !ok || !errors.Is(f, cause) {
			t.Errorf("panic %v, want a *stateroom.Fault wrapping the factory's error", v)
		}
	})
	t.Run("bad event", func(t *testing.T) {
		g, _, _ := newTestGuest(t)
		v := mustPanic(t, func() { g.recv([]byte{9, 0, 0, 0}) })
		f, ok := v.(*stateroom.Fault)
		if !ok || !errors.Is(f, abi.ErrTag) {
			t.Errorf("panic %v, want a *stateroom.Fault wrapping abi.ErrTag", v)
		}
	})
}
