package wasmhost

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"
)

// TestGuestOutput: what a guest writes to stdout and stderr reaches the
// logger line by line, tagged with the room id and the stream.
func TestGuestOutput(t *testing.T) {
	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := loadGuest(t, "relay", opts)
	s := newService(t, m)
	command(s, newRoom(), "p")
	if got := logs.lines(`msg="hello from stdout"`, "room=test-room", "stream=stdout"); len(got) != 1 {
		t.Errorf("stdout log lines %q, want one; log:\n%s", got, logs.String())
	}
	if got := logs.lines(`msg="oops on stderr"`, "room=test-room", "stream=stderr"); len(got) != 1 {
		t.Errorf("stderr log lines %q, want one; log:\n%s", got, logs.String())
	}
	if tail := s.out.StderrTail(); tail != "oops on stderr" {
		t.Errorf("stderr tail %q", tail)
	}
}

// clockReading is what the relay guest's "c" command reports.
type clockReading struct {
	wall, mono uint64
	random     []byte
}

func readClock(t *testing.T, s *service) clockReading {
	t.Helper()
	room := newRoom()
	command(s, room, "c")
	if len(room.Sent) != 2 || len(room.Sent[1].Payload.Data) != 32 {
		t.Fatalf("sends %+v, want the envelope and 32 bytes", room.Sent)
	}
	b := room.Sent[1].Payload.Data
	return clockReading{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), b[16:]}
}

// TestClockAndRandom: the guest sees the real wall clock, a monotonic clock
// that advances, and random bytes that differ between reads (a runtime's
// defaults would give a frozen clock and deterministic randomness).
func TestClockAndRandom(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	first := readClock(t, s)
	wall := time.Unix(0, int64(first.wall))
	if d := time.Since(wall); d < -time.Minute || d > time.Minute {
		t.Errorf("guest wall clock %v, host %v", wall, time.Now())
	}
	var second clockReading
	for deadline := time.Now().Add(5 * time.Second); ; { // poll until the monotonic clock moves
		second = readClock(t, s)
		if second.mono > first.mono || time.Now().After(deadline) {
			break
		}
	}
	if second.mono <= first.mono {
		t.Errorf("monotonic clock did not advance: %d then %d", first.mono, second.mono)
	}
	if bytes.Equal(first.random, second.random) || bytes.Equal(first.random, make([]byte, 16)) {
		t.Errorf("random_get gave %x then %x", first.random, second.random)
	}
	// A second room must not replay the first room's random stream.
	other := readClock(t, newService(t, m))
	if bytes.Equal(other.random, first.random) {
		t.Errorf("two rooms got the same random bytes %x", first.random)
	}
}

// TestSandboxWorld: the guest sees no arguments, no environment, and no
// preopened directory.
func TestSandboxWorld(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	s := newService(t, m)
	room := newRoom()
	command(s, room, "e")
	if len(room.Sent) != 2 || len(room.Sent[1].Payload.Data) != 20 {
		t.Fatalf("sends %+v, want the envelope and 20 bytes", room.Sent)
	}
	b := room.Sent[1].Payload.Data
	var got [5]uint32
	for i := range got {
		got[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	const ebadf = 8
	if want := [5]uint32{0, 0, 0, 0, ebadf}; got != want {
		t.Errorf("argc, argv size, envc, environ size, fd_prestat_get(3) = %v, want %v", got, want)
	}
}

// TestSleepBudget: a guest asleep in WASI poll_oneoff (a relative clock,
// what time.Sleep compiles to) is still under the event budget. A 20 s
// sleep under a 200 ms budget faults with the budget's reason about when
// the budget runs out (within withinBudget's deadline, 2 s), not 20 s
// later; a sleep within the budget sleeps its whole duration and the room
// goes on.
func TestSleepBudget(t *testing.T) {
	opts := testOptions()
	opts.EventBudget = 200 * time.Millisecond
	m := loadGuest(t, "relay", opts)
	s := newService(t, m)
	room := newRoom()

	start := time.Now()
	command(s, room, "w") // 50 ms
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("a 50 ms sleep returned after %v", took)
	}

	start = time.Now()
	fault := mustFault(t, "wasm event budget exceeded", ErrBudget, withinBudget(t, m, func() { command(s, room, "s") }))
	took := time.Since(start)
	wantInMessage(t, fault.Err.Error(), "stateroom_recv ran past the 200ms budget")
	t.Logf("a 20 s sleep under a %v budget faulted after %v", opts.EventBudget, took)
	if took < opts.EventBudget {
		t.Errorf("the sleep faulted after %v, before the %v budget ran out", took, opts.EventBudget)
	}
}

// splitterLines runs a lineSplitter over the chunks and returns the pieces
// it emitted, with "+" after each cut one.
func splitterLines(max int, chunks ...string) []string {
	var got []string
	w := lineSplitter{max: max, emit: func(line []byte, cut bool) {
		s := string(line)
		if cut {
			s += "+"
		}
		got = append(got, s)
	}}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
			panic("short write")
		}
	}
	w.Flush()
	return got
}

func TestLineSplitter(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"whole lines", []string{"a\nbb\n"}, []string{"a", "bb"}},
		{"split across writes", []string{"h", "ey\nyo", "u\n"}, []string{"hey", "you"}},
		{"unfinished line flushed", []string{"a\nrest"}, []string{"a", "rest"}},
		{"empty lines kept", []string{"\n\nx\n"}, []string{"", "", "x"}},
		{"long line cut", []string{"abcdefghij\n"}, []string{"abcd+", "efgh+", "ij"}},
		{"long line across writes", []string{"ab", "cdef", "ghi\n"}, []string{"abcd+", "efgh+", "i"}},
		{"line of exactly max", []string{"abcd\n"}, []string{"abcd"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := splitterLines(4, c.chunks...)
			if len(got) != len(c.want) {
				t.Fatalf("lines %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("lines %q, want %q", got, c.want)
				}
			}
		})
	}
}

func TestStderrTail(t *testing.T) {
	o := newGuestOutput(slog.New(slog.DiscardHandler))
	for i := range 11 {
		o.stderr.Write([]byte{'a' + byte(i), '\n'})
	}
	if got, want := o.StderrTail(), "d\ne\nf\ng\nh\ni\nj\nk"; got != want {
		t.Errorf("tail %q, want %q", got, want)
	}
}
