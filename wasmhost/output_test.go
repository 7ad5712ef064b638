package wasmhost

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// floodWAT is a guest that prints in a loop: on every message it writes
// floodLines lines to stdout, one fd_write each, then "done" to stderr.
const floodWAT = `
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  (data (i32.const 64) "flood line\n")
  (data (i32.const 96) "done\n")
  (func (export "stateroom_malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "stateroom_free") (param i32 i32))
  (func (export "stateroom_recv") (param $ptr i32) (param $len i32)
    (local $i i32)
    (if (i32.ne (i32.load (local.get $ptr)) (i32.const 3)) (then (return)))
    (loop $more
      (call $write (i32.const 1) (i32.const 64) (i32.const 11))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 20000))))
    (call $write (i32.const 2) (i32.const 96) (i32.const 5)))
  (func $write (param $fd i32) (param $buf i32) (param $len i32)
    (i32.store (i32.const 512) (local.get $buf))
    (i32.store (i32.const 516) (local.get $len))
    (if (call $fd_write (local.get $fd) (i32.const 512) (i32.const 1) (i32.const 520))
      (then unreachable))))
`

// floodLines is how many lines floodWAT writes to stdout per message.
const floodLines = 20000

var droppedRE = regexp.MustCompile(`lines dropped.* dropped=(\d+)`)

// droppedSum adds up the dropped counts the log reports.
func droppedSum(logs *logBuffer) int {
	n := 0
	for _, line := range logs.lines("lines dropped") {
		if m := droppedRE.FindStringSubmatch(line); m != nil {
			d, _ := strconv.Atoi(m[1])
			n += d
		}
	}
	return n
}

// TestGuestOutputFloodIsLimited: a guest printing 20,000 lines in one event
// gets at most outputLines of them logged per outputInterval; the rest are
// dropped, and counted in a warning that comes within the interval
// without the guest writing again. Every line is either logged or
// counted. The stderr tail the fault log shows still has the guest's last
// line. Before the limit, every line was logged (issue 15: 21 MB of log
// in 55 ms).
func TestGuestOutputFloodIsLimited(t *testing.T) {
	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	opts.EventBudget = time.Minute // the flood is slow under -race on a busy machine; the budget is not under test
	path := filepath.Join(t.TempDir(), "flood.wat")
	if err := os.WriteFile(path, []byte(floodWAT), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	s := newService(t, m)

	for round := 1; round <= 2; round++ {
		before := len(logs.lines("stream=", "room=test-room"))
		reported := droppedSum(&logs)
		start := time.Now()
		command(s, newRoom(), "go")
		// Windows the flood could span: each logs at most outputLines.
		windows := int(time.Since(start)/outputInterval) + 1
		logged := len(logs.lines("stream=", "room=test-room")) - before
		if logged < outputLines || logged > windows*outputLines {
			t.Fatalf("round %d: %d of %d lines logged over %d interval(s), want %d to %d", round, logged, floodLines+1, windows, outputLines, windows*outputLines)
		}
		// The drop is reported without another write, within the
		// interval (waited for generously: the report is a timer).
		want := floodLines + 1 - logged
		deadline := time.Now().Add(10 * time.Second)
		for droppedSum(&logs)-reported != want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: dropped lines reported: %d, want %d; log:\n%.2000s", round, droppedSum(&logs)-reported, want, logs.lines("lines dropped"))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if tail, want := s.out.StderrTail(), strings.TrimSuffix(strings.Repeat("done\n", round), "\n"); tail != want {
			t.Fatalf("round %d: stderr tail %q, want %q: the guest's last lines although they were not logged", round, tail, want)
		}
		// The report comes as the window ends, so the next round is in a
		// later window: the limit is a rate, not a lifetime's allowance.
	}
}

// TestGuestOutputReportOnClose: an instance that ends with drops not yet
// reported reports them as it ends, and leaves no timer behind.
func TestGuestOutputReportOnClose(t *testing.T) {
	var logs logBuffer
	o := newGuestOutput(slog.New(slog.NewTextHandler(&logs, nil)))
	for range outputLines + 7 {
		o.stdout.Write([]byte("x\n"))
	}
	o.Flush()
	if got := droppedSum(&logs); got != 7 {
		t.Fatalf("reported %d dropped lines at Flush, want 7; log:\n%s", got, logs.String())
	}
	if o.report.Stop() {
		t.Fatal("the report timer was still armed after Flush")
	}
	if got := len(logs.lines("msg=x")); got != outputLines {
		t.Fatalf("%d lines logged, want %d", got, outputLines)
	}
}
