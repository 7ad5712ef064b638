package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// FuzzLineSplitter: whatever a guest writes, in whatever pieces, the
// splitter emits lines without newlines, never longer than its bound, that
// join back into exactly what was written.
func FuzzLineSplitter(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, chunk, max uint8) {
		maxLen := int(max%32) + 1
		step := int(chunk%16) + 1
		var pieces [][]byte
		var cuts []bool
		w := lineSplitter{max: maxLen, emit: func(line []byte, cut bool) {
			if len(line) > maxLen || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("piece %q breaks the bound %d or holds a newline", line, maxLen)
			}
			pieces = append(pieces, bytes.Clone(line))
			cuts = append(cuts, cut)
		}}
		for rest := data; len(rest) > 0; {
			n := min(step, len(rest))
			if got, err := w.Write(rest[:n]); got != n || err != nil {
				t.Fatalf("Write returned %d, %v", got, err)
			}
			rest = rest[n:]
		}
		w.Flush()
		var joined []byte
		for i, p := range pieces {
			joined = append(joined, p...)
			if !cuts[i] {
				joined = append(joined, '\n')
			}
		}
		want := data
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want = append(bytes.Clone(data), '\n') // Flush ends the last line
		}
		// A cut piece that happened to end the input leaves no newline.
		if len(cuts) > 0 && cuts[len(cuts)-1] {
			want = want[:len(want)-1]
		}
		if !bytes.Equal(joined, want) {
			t.Fatalf("pieces %q join to %q, want %q", pieces, joined, want)
		}
	})
}

// FuzzCompile: no input makes Load or Compile panic; every failure wraps
// one of the package's errors.
func FuzzCompile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Compile(context.Background(), data, testOptions())
		if err == nil {
			_ = m.Close(context.Background())
			return
		}
		for _, known := range []error{ErrNotWasm, ErrWAT, ErrInvalid, ErrExport, ErrImport, ErrVersion, ErrTrap, ErrBudget, ErrExit, ErrSend} {
			if errors.Is(err, known) {
				return
			}
		}
		t.Fatalf("error %v wraps none of the package's errors", err)
	})
}

// FuzzSend: whatever bytes a guest hands stateroom_send, the host routes
// exactly what abi.DecodeCommand reads from them, or faults the instance
// with ErrSend; it never crashes. Text that is not valid UTF-8 is routed
// as text (the room drops it); a Close with a code a service may not use
// is ignored.
func FuzzSend(f *testing.F) {
	m, err := Load(context.Background(), "testdata/relay.wasm", testOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, cmd []byte) {
		s := newService(t, m)
		room := &timerRoom{Room: newRoom()}
		connectClients(room.Room, 3) // so that a Close of 1, 2 or 3 closes someone
		fault := catchFault(t, func() {
			s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary(cmd)})
		})
		want, decodeErr := abi.DecodeCommand(cmd)
		switch {
		case decodeErr != nil:
			if fault == nil || !errors.Is(fault.Err, ErrSend) || fault.Reason != "wasm malformed send" {
				t.Fatalf("undecodable %x: fault %v, want a malformed-send fault", cmd, fault)
			}
			if !strings.Contains(fault.Err.Error(), decodeErr.Error()) {
				t.Fatalf("fault %v does not say why: %v", fault, decodeErr)
			}
		case fault != nil:
			t.Fatalf("valid command %x faulted: %v", cmd, fault)
		case want.Kind == abi.CommandSetTimer:
			if len(room.timers) != 1 || room.timers[0].Milliseconds() != int64(want.DelayMS) || len(room.Sent) != 1 || len(room.Closed) != 0 {
				t.Fatalf("%x: timers %v sends %+v closed %+v, want one timer of %d ms", cmd, room.timers, room.Sent, room.Closed, want.DelayMS)
			}
		case want.Kind == abi.CommandClose:
			if len(room.Sent) != 1 || len(room.timers) != 0 {
				t.Fatalf("%x: sends %+v timers %v, want the envelope only", cmd, room.Sent, room.timers)
			}
			var closed []stateroomtest.Closed
			if want.Code.ForService() && want.Client >= 1 && want.Client <= 3 {
				closed = []stateroomtest.Closed{{Client: want.Client, Code: want.Code, Reason: stateroom.TruncateReason(want.Reason)}}
			}
			if !slices.Equal(room.Closed, closed) {
				t.Fatalf("%x: closed %+v, want %+v", cmd, room.Closed, closed)
			}
		default:
			if len(room.Sent) != 2 || len(room.timers) != 0 || len(room.Closed) != 0 {
				t.Fatalf("%x: sends %+v timers %v closed %+v, want the envelope and one message", cmd, room.Sent, room.timers, room.Closed)
			}
			got := room.Sent[1]
			if got.To != want.To || got.Payload.Binary != want.Payload.Binary || !bytes.Equal(got.Payload.Data, want.Payload.Data) {
				t.Fatalf("%x: routed %+v, want %v %x", cmd, got, want.To, want.Payload.Data)
			}
		}
	})
}
