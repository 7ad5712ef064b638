package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// command sends the relay guest a text command (see testdata/relay.wat).
func command(s *service, room stateroom.Room, c string) {
	s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(c)})
}

// TestFaults drives every kind of fault through the relay guest and checks
// the reason the clients would see, the error, and that the instance is
// closed for good. It also holds the one malformed-looking send that is not
// a fault: text that is not valid UTF-8.
func TestFaults(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 1 << 20 // 16 pages
	m := loadGuest(t, "relay", opts)
	tight := opts
	tight.EventBudget = 100 * time.Millisecond // for the budget cases only: the race detector makes memory growth slow
	for _, c := range []struct {
		name    string
		send    func(s *service, room stateroom.Room)
		reason  string // "": the send must not fault
		target  error
		message string
		check   func(t *testing.T, s *service, room *stateroomtest.Room) // for a send that does not fault
	}{
		{name: "trap", send: func(s *service, r stateroom.Room) { command(s, r, "t") }, reason: "wasm trap", target: ErrTrap, message: "unreachable"},
		{name: "infinite loop", send: func(s *service, r stateroom.Room) { command(s, r, "l") }, reason: "wasm event budget exceeded", target: ErrBudget, message: "stateroom_recv ran past the 100ms budget"},
		{name: "sleep past the budget", send: func(s *service, r stateroom.Room) { command(s, r, "s") }, reason: "wasm event budget exceeded", target: ErrBudget, message: "stateroom_recv ran past the 100ms budget"},
		{name: "memory growth", send: func(s *service, r stateroom.Room) { command(s, r, "g") }, reason: "wasm memory limit reached", target: ErrTrap, message: "16 of 16 pages"},
		{name: "proc_exit", send: func(s *service, r stateroom.Room) { command(s, r, "x") }, reason: "wasm guest exited", target: ErrExit, message: "code 3"},
		{name: "send out of bounds", send: func(s *service, r stateroom.Room) { command(s, r, "o") }, reason: "wasm malformed send", target: ErrSend, message: "512 bytes at 0xffffff00"},
		{name: "send bad tag", send: func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary([]byte{7, 0, 0, 0})})
		}, reason: "wasm malformed send", target: ErrSend, message: "MessageFromProcess tag 7"},
		{name: "send bad recipient", send: func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary([]byte{0, 0, 0, 0, 9, 0, 0, 0})})
		}, reason: "wasm malformed send", target: ErrSend, message: "MessageRecipient tag 9"},
		{name: "send invalid UTF-8", send: func(s *service, r stateroom.Room) {
			// Message{Broadcast, Text(ff)}: not a fault. The room gets
			// the text as the guest wrote it and, like any room, drops
			// and counts it (server: deliveries_dropped_total
			// {reason="invalid_utf8"}), as for a native service.
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, "0000000000000000010000000100000000000000ff"))})
		}, check: func(t *testing.T, s *service, room *stateroomtest.Room) {
			if s.closed {
				t.Fatal("invalid UTF-8 in a text send closed the instance")
			}
			if len(room.Sent) != 2 {
				t.Fatalf("sends %+v, want the envelope and the text", room.Sent)
			}
			got := room.Sent[1]
			if got.To != stateroom.Everyone || got.Payload.Binary || !bytes.Equal(got.Payload.Data, []byte{0xff}) {
				t.Fatalf("send %+v, want Text(ff) to everyone: the guest's bytes, still text", got)
			}
			room.TakeSent()
			s.Timer(room, stateroom.TimerEvent{}) // the room goes on
			if len(room.Sent) != 1 {
				t.Errorf("after the invalid text, a Timer gave sends %+v, want the envelope", room.Sent)
			}
		}},
		{name: "send trailing bytes", send: func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, "0100000000000000ff"))})
		}, reason: "wasm malformed send", target: ErrSend, message: "trailing"},
		{name: "send truncated close", send: func(s *service, r stateroom.Room) {
			s.Message(r, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(unhex(t, "02000000050000000410"))})
		}, reason: "wasm malformed send", target: ErrSend, message: "close reason length needs 8 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mod := m
			if c.target == ErrBudget {
				// A module of its own: withinBudget closes it if the
				// budget fails, which must not fail the cases after.
				mod = loadGuest(t, "relay", tight)
			}
			s := newService(t, mod)
			room := newRoom()
			s.Init(room, stateroom.InitEvent{})
			room.TakeSent()
			if c.reason == "" {
				if fault := catchFault(t, func() { c.send(s, room) }); fault != nil {
					t.Fatalf("faulted: %v", fault)
				}
				c.check(t, s, room)
				return
			}
			send := func() { c.send(s, room) }
			if c.target == ErrBudget {
				send = withinBudget(t, mod, send)
			}
			fault := mustFault(t, c.reason, c.target, send)
			wantInMessage(t, fault.Err.Error(), c.message)
			if !s.closed {
				t.Error("the instance is still open after a fault")
			}
			room.TakeSent()
			s.Timer(room, stateroom.TimerEvent{}) // must be a no-op, not a call into a closed instance
			if len(room.Sent) != 0 {
				t.Errorf("a faulted instance sent %+v", room.Sent)
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
	room := newRoom()
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
				s.Timer(newRoom(), stateroom.TimerEvent{}) // small events still work
			}
			fault := mustFault(t, "wasm malloc failed", ErrMalloc, func() {
				s.Message(newRoom(), stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(strings.Repeat("x", c.payload))})
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
// fails at load within the budget instead of hanging. Compile runs in a
// goroutine so that a broken budget fails the test in seconds; there is no
// Module yet to close, so that goroutine would then be left spinning (and
// goleak reports it too).
func TestBudgetCoversInstantiation(t *testing.T) {
	opts := testOptions()
	opts.EventBudget = 50 * time.Millisecond
	src := variant(t, "reactor", "(global.set $inits", "(loop $l (br $l)) (global.set $inits")
	done := make(chan string, 1)
	go func() {
		m, err := Compile(context.Background(), src, opts)
		switch {
		case err == nil:
			_ = m.Close(context.Background())
			done <- "Compile succeeded, want an error wrapping ErrBudget"
		case !errors.Is(err, ErrBudget):
			done <- fmt.Sprintf("error %q does not wrap ErrBudget", err)
		default:
			done <- err.Error()
		}
	}()
	select {
	case msg := <-done:
		wantInMessage(t, msg, "_initialize ran past the 50ms budget")
	case <-time.After(budgetDeadline(opts.EventBudget)):
		t.Fatalf("Compile still runs %v into a looping _initialize under a %v budget: the budget did not stop it", budgetDeadline(opts.EventBudget), opts.EventBudget)
	}
}

// TestRoomPanicIsFault: a panic in the room's Send (a host bug) unwinds the
// guest; the instance cannot be trusted afterwards, so it faults too.
func TestRoomPanicIsFault(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	fault := catchFault(t, func() { s.Init(panicRoom{newRoom()}, stateroom.InitEvent{}) })
	if fault == nil || !errors.Is(fault.Err, ErrTrap) || !strings.Contains(fault.Err.Error(), "room is broken") {
		t.Fatalf("fault %v, want a trap carrying the room's panic", fault)
	}
}

// panicRoom is a recorder whose Send panics, as a buggy runtime would.
type panicRoom struct{ *stateroomtest.Room }

func (panicRoom) Send(stateroom.Recipient, stateroom.Payload) { panic("room is broken") }
