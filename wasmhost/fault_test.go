package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// command sends the relay guest a text command.
func command(s *service, room stateroom.Room, c string) {
	s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(c)})
}

// TestFaults drives every kind of fault through the relay guest and checks
// the reason the clients would see, the error, and that the instance is
// closed for good.
func TestFaults(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 1 << 20 // 16 pages
	m := loadGuest(t, "relay", opts)
	opts.EventBudget = 100 * time.Millisecond
	tight := loadGuest(t, "relay", opts) // for the loop only: the race detector makes memory growth slow
	for _, c := range []struct {
		name    string
		send    func(s *service, room stateroom.Room)
		reason  string
		target  error
		message string
	}{
		{"trap", func(s *service, r stateroom.Room) { command(s, r, "t") }, "wasm trap", ErrTrap, "unreachable"},
		{"infinite loop", func(s *service, r stateroom.Room) { command(s, r, "l") }, "wasm event budget exceeded", ErrBudget, "stateroom_recv ran past the 100ms budget"},
		{"memory growth", func(s *service, r stateroom.Room) { command(s, r, "g") }, "wasm memory limit reached", ErrTrap, "16 of 16 pages"},
		{"proc_exit", func(s *service, r stateroom.Room) { command(s, r, "x") }, "wasm guest exited", ErrExit, "code 3"},
		{"send out of bounds", func(s *service, r stateroom.Room) { command(s, r, "o") }, "wasm malformed send", ErrSend, "512 bytes at 0xffffff00"},
		{"send bad tag", func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary([]byte{7, 0, 0, 0})})
		}, "wasm malformed send", ErrSend, "MessageFromProcess tag 7"},
		{"send bad recipient", func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary([]byte{0, 0, 0, 0, 9, 0, 0, 0})})
		}, "wasm malformed send", ErrSend, "MessageRecipient tag 9"},
		{"send invalid UTF-8", func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, "0000000000000000010000000100000000000000ff"))})
		}, "wasm malformed send", ErrSend, "UTF-8"},
		{"send trailing bytes", func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, "0100000000000000ff"))})
		}, "wasm malformed send", ErrSend, "trailing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mod := m
			if c.target == ErrBudget {
				mod = tight
			}
			s := newService(t, mod)
			room := &fakeRoom{}
			s.Init(room)
			fault := mustFault(t, c.reason, c.target, func() { c.send(s, room) })
			wantInMessage(t, fault.Err.Error(), c.message)
			if !s.closed {
				t.Error("the instance is still open after a fault")
			}
			room.reset()
			s.Timer(room) // must be a no-op, not a call into a closed instance
			if len(room.sends) != 0 {
				t.Errorf("a faulted instance sent %v", room.sends)
			}
		})
	}
}

// TestFaultLogsStderr checks that a fault is logged with the guest's last
// stderr lines and the room id.
func TestFaultLogsStderr(t *testing.T) {
	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := loadGuest(t, "relay", opts)
	s := newService(t, m)
	room := &fakeRoom{}
	command(s, room, "p")
	mustFault(t, "wasm trap", ErrTrap, func() { command(s, room, "t") })
	got := logs.lines("wasm instance faulted", "room=test-room")
	if len(got) != 1 {
		t.Fatalf("fault log lines %q, want one", got)
	}
	wantInMessage(t, got[0], "oops on stderr", "unreachable")
}

// TestMallocFaults: a guest whose malloc returns a pointer that cannot hold
// what the host writes. At load the probe instance gets a room id written
// through malloc (as upstream's host does), so a malloc that is always
// broken fails Compile; one that breaks only for larger sizes faults the
// first event that needs one: the retained event buffer (a 30-byte event
// asks for 64 bytes, minEventBuffer) or the one-off buffer of an event over
// maxRetainedEventBuffer.
func TestMallocFaults(t *testing.T) {
	for _, ptr := range []string{"0", "65530"} {
		_, err := Compile(context.Background(), variant(t, "versionfunc", "(result i32) (i32.const 1024)", "(result i32) (i32.const "+ptr+")"), testOptions())
		if !errors.Is(err, ErrMalloc) {
			t.Fatalf("Compile with malloc returning %s: err = %v, want ErrMalloc", ptr, err)
		}

		for _, c := range []struct {
			over    int    // malloc breaks for sizes over this
			payload int    // the message's payload size
			want    string // the malloc the error names
		}{
			{20, 10, "stateroom_malloc(64) returned"},
			{maxRetainedEventBuffer, 20000, "stateroom_malloc(20020) returned"},
		} {
			bigOnly := fmt.Sprintf("(result i32) (if (result i32) (i32.gt_u (local.get 0) (i32.const %d)) (then (i32.const %s)) (else (i32.const 1024)))", c.over, ptr)
			m, err := Compile(context.Background(), variant(t, "versionfunc", "(result i32) (i32.const 1024)", bigOnly), testOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })
			s := newService(t, m)
			if c.over >= minEventBuffer {
				s.Timer(&fakeRoom{}) // small events still work
			}
			fault := mustFault(t, "wasm malloc failed", ErrMalloc, func() {
				s.Message(&fakeRoom{}, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(strings.Repeat("x", c.payload))})
			})
			wantInMessage(t, fault.Err.Error(), c.want)
			if !s.closed {
				t.Error("the instance is still open after a malloc fault")
			}
		}
	}
}

// TestSendOutsideEvent: a guest that sends from _initialize, when there is
// no room to send to, fails at load.
func TestSendOutsideEvent(t *testing.T) {
	src := variant(t, "reactor", "(global.set $inits", "(call $send (i32.const 32) (i32.const 25)) (global.set $inits")
	msg := loadError(t, src, testOptions(), ErrSend)
	wantInMessage(t, msg, "outside an event")
}

// TestBudgetCoversInstantiation: a reactor whose _initialize loops forever
// fails at load within the budget instead of hanging.
func TestBudgetCoversInstantiation(t *testing.T) {
	opts := testOptions()
	opts.EventBudget = 50 * time.Millisecond
	src := variant(t, "reactor", "(global.set $inits", "(loop $l (br $l)) (global.set $inits")
	msg := loadError(t, src, opts, ErrBudget)
	wantInMessage(t, msg, "_initialize ran past the 50ms budget")
}

// TestRoomPanicIsFault: a panic in the room's Send (a host bug) unwinds the
// guest; the instance cannot be trusted afterwards, so it faults too.
func TestRoomPanicIsFault(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	fault := catchFault(t, func() { s.Init(panicRoom{}) })
	if fault == nil || !errors.Is(fault.Err, ErrTrap) || !strings.Contains(fault.Err.Error(), "room is broken") {
		t.Fatalf("fault %v, want a trap carrying the room's panic", fault)
	}
}

type panicRoom struct{}

func (panicRoom) ID() string                                  { return "panic" }
func (panicRoom) Send(stateroom.Recipient, stateroom.Payload) { panic("room is broken") }
func (panicRoom) SetTimer(time.Duration)                      {}
