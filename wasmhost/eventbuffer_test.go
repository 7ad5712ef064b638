package wasmhost

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// allocCall is one record of alloclog.wat's log: a stateroom_malloc (ptr is
// what it returned) or a stateroom_free (ptr is what it was given).
type allocCall struct {
	free      bool
	ptr, size uint32
}

func (c allocCall) String() string {
	if c.free {
		return fmt.Sprintf("free(%#x, %d)", c.ptr, c.size)
	}
	return fmt.Sprintf("malloc(%d)=%#x", c.size, c.ptr)
}

// allocLog asks the alloclog guest for the mallocs and frees since the last
// query; the query's own delivery is in it.
func allocLog(t *testing.T, s *service) []allocCall {
	t.Helper()
	room := newRoom()
	s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("?")})
	if len(room.Sent) != 2 {
		t.Fatalf("the query got %d sends, want the envelope and the log", len(room.Sent))
	}
	b := room.Sent[1].Payload.Data
	if len(b)%12 != 0 {
		t.Fatalf("the log is %d bytes, not whole 12-byte records", len(b))
	}
	var calls []allocCall
	for ; len(b) > 0; b = b[12:] {
		kind := binary.LittleEndian.Uint32(b)
		if kind != 1 && kind != 2 {
			t.Fatalf("log record of kind %d", kind)
		}
		calls = append(calls, allocCall{kind == 2, binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])})
	}
	return calls
}

// wantCalls checks the calls of one step against want, given as
// "malloc(n)" and "free(n)". Replaying earlier and calls in order, every
// free must free a live allocation with its size, and after the step
// exactly one allocation must be live: the retained event buffer.
func wantCalls(t *testing.T, step string, earlier, calls []allocCall, want ...string) {
	t.Helper()
	var got []string
	for _, c := range calls {
		if c.free {
			got = append(got, fmt.Sprintf("free(%d)", c.size))
		} else {
			got = append(got, fmt.Sprintf("malloc(%d)", c.size))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: guest saw %v, want %v", step, calls, want)
	}
	live := map[uint32]uint32{} // ptr -> size
	for _, c := range append(slices.Clone(earlier), calls...) {
		switch {
		case !c.free && c.ptr == 0:
			t.Fatalf("%s: %v returned 0", step, c)
		case !c.free:
			live[c.ptr] = c.size
		case live[c.ptr] != c.size:
			t.Fatalf("%s: %v does not free a live allocation of that size (live: %v)", step, c, live)
		default:
			delete(live, c.ptr)
		}
	}
	if len(live) != 1 {
		t.Fatalf("%s: %d allocations live (%v), want 1: the retained event buffer", step, len(live), live)
	}
}

// messageEvent is the ABI encoding of Message{sender, Text(text)}, written
// out by hand from ABI.md rather than with internal/abi, so that the test
// does not check the codec against itself.
func messageEvent(sender uint32, text string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 3)
	b = binary.LittleEndian.AppendUint32(b, sender)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(text)))
	return append(b, text...)
}

// deliverText delivers Message{sender, Text(text)} and checks that the
// guest received exactly its encoding.
func deliverText(t *testing.T, s *service, sender uint32, text string) {
	t.Helper()
	room := newRoom()
	s.Message(room, stateroom.MessageEvent{Client: stateroom.ClientID(sender), Payload: stateroom.Text(text)})
	if len(room.Sent) != 1 {
		t.Fatalf("%d sends, want the envelope", len(room.Sent))
	}
	if want := messageEvent(sender, text); !bytes.Equal(room.Sent[0].Payload.Data, want) {
		t.Fatalf("a %d-byte event arrived as %d bytes that differ from its encoding", len(want), len(room.Sent[0].Payload.Data))
	}
}

// TestMessageEventOracle keeps messageEvent honest against the ABI's
// vectors.
func TestMessageEventOracle(t *testing.T) {
	for _, c := range []struct {
		sender uint32
		text   string
		hex    string
	}{
		{3, "hi", "03000000030000000100000002000000000000006869"},
		{1, "é", "0300000001000000010000000200000000000000c3a9"},
	} {
		if got := hex.EncodeToString(messageEvent(c.sender, c.text)); got != c.hex {
			t.Errorf("messageEvent(%d, %q) = %s, want %s", c.sender, c.text, got, c.hex)
		}
	}
}

// TestEventBufferReused: after the room id's malloc and free, a room's
// events share one buffer, malloc'd once: many events of every kind cost
// no further malloc or free, and each arrives exactly as the ABI's vectors
// say.
func TestEventBufferReused(t *testing.T) {
	m := loadGuest(t, "alloclog", testOptions())
	s := newService(t, m) // room "test-room": 9 bytes
	start := allocLog(t, s)
	wantCalls(t, "start and first event", nil, start, "malloc(9)", "free(9)", "malloc(64)")

	room := newRoom()
	const rounds = 20
	for range rounds {
		for _, v := range toProcessVectors {
			room.TakeSent()
			v.deliver(s, room)
			if len(room.Sent) != 1 {
				t.Fatalf("%s: %d sends, want the envelope", v.name, len(room.Sent))
			}
			if got := hex.EncodeToString(room.Sent[0].Payload.Data); got != v.hex {
				t.Fatalf("%s: guest received %s, want %s", v.name, got, v.hex)
			}
		}
	}
	wantCalls(t, fmt.Sprintf("%d events", rounds*len(toProcessVectors)), start, allocLog(t, s))
}

// TestEventBufferGrows walks a room through growing events: a bigger event
// frees the retained buffer and mallocs one of the next power of two; an
// event over maxRetainedEventBuffer gets a one-off malloc and free and
// leaves the retained buffer in place; small events then cost nothing.
func TestEventBufferGrows(t *testing.T) {
	m := loadGuest(t, "alloclog", testOptions())
	s := newService(t, m)
	s.Timer(newRoom(), stateroom.TimerEvent{})
	calls := allocLog(t, s)
	wantCalls(t, "start", nil, calls, "malloc(9)", "free(9)", "malloc(64)")

	// text sizes whose events (20 bytes + text) are the sizes named.
	text := func(eventSize int) string { return strings.Repeat("z", eventSize-20) }
	for _, step := range []struct {
		name      string
		eventSize int
		want      []string
	}{
		{"fits", 64, nil},
		{"grows", 65, []string{"free(64)", "malloc(128)"}},
		{"fits again", 100, nil},
		{"grows past a power", 1000, []string{"free(128)", "malloc(1024)"}},
		{"at the cap", maxRetainedEventBuffer, []string{"free(1024)", "malloc(16384)"}},
		{"over the cap", maxRetainedEventBuffer + 1, []string{"malloc(16385)", "free(16385)"}},
		{"far over the cap", 200000, []string{"malloc(200000)", "free(200000)"}},
		{"small after big", 30, nil},
		{"at the cap again", maxRetainedEventBuffer, nil},
	} {
		deliverText(t, s, 7, text(step.eventSize))
		log := allocLog(t, s)
		wantCalls(t, step.name, calls, log, step.want...)
		calls = append(calls, log...)
	}
	if s.buf.size != maxRetainedEventBuffer {
		t.Errorf("retained buffer of %d bytes, want %d", s.buf.size, maxRetainedEventBuffer)
	}

	// Repeated big events do not pile up in the guest: each one's buffer
	// is freed, so its memory stops growing after the first.
	deliverText(t, s, 7, text(100000))
	before := s.mem.Size()
	for range 5 {
		deliverText(t, s, 7, text(100000))
	}
	if after := s.mem.Size(); after != before {
		t.Errorf("guest memory grew from %d to %d bytes over events that fit in it", before, after)
	}
	log := allocLog(t, s)
	wantCalls(t, "six big events", calls, log, slices.Repeat([]string{"malloc(100000)", "free(100000)"}, 6)...)
}

// TestEventBufferSizeZero: a zero-byte buffer needs no guest memory (ABI:
// malloc(0) returns 0), so the host asks the guest nothing. No event
// encodes to zero bytes today; this keeps the case from calling
// malloc(0) and taking its 0 for a failure.
func TestEventBufferSizeZero(t *testing.T) {
	m := loadGuest(t, "alloclog", testOptions())
	s := newService(t, m)
	calls := allocLog(t, s)
	ptr, oneOff, err := s.eventBuffer(s.ctx, 0)
	if ptr != 0 || oneOff || err != nil {
		t.Fatalf("eventBuffer(0) = %#x, %v, %v; want 0, false, nil", ptr, oneOff, err)
	}
	wantCalls(t, "a zero-byte buffer", calls, allocLog(t, s))
}

// TestEventBufferFaults: a guest that traps in the free of a growing
// buffer, or in the one-off free of a big event, faults the room like any
// other trap, naming stateroom_free, and the instance is closed for good.
func TestEventBufferFaults(t *testing.T) {
	for _, c := range []struct {
		name      string
		trapSize  int // stateroom_free of this size traps
		eventSize int
	}{
		{"growing", 64, 200},
		{"one-off", 30000, 30000},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := variant(t, "alloclog", "(call $record (i32.const 2)",
				fmt.Sprintf("(if (i32.eq (local.get $size) (i32.const %d)) (then unreachable)) (call $record (i32.const 2)", c.trapSize))
			m, err := Compile(t.Context(), src, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(t.Context()) })
			s := newService(t, m)
			room := newRoom()
			s.Timer(room, stateroom.TimerEvent{})
			fault := mustFault(t, "wasm trap", ErrTrap, func() {
				s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(strings.Repeat("y", c.eventSize-20))})
			})
			wantInMessage(t, fault.Err.Error(), "stateroom_free")
			if !s.closed {
				t.Fatal("the instance is still open after the fault")
			}
			room.TakeSent()
			s.Timer(room, stateroom.TimerEvent{})
			if len(room.Sent) != 0 {
				t.Errorf("a faulted instance sent %+v", room.Sent)
			}
		})
	}
}
