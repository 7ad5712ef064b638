package wasmhost

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Bounds of guest output handling.
const (
	// maxLineBytes cuts longer lines into pieces: a guest that writes
	// without newlines cannot grow the host's buffer.
	maxLineBytes = 4096
	// stderrTailLines is how many recent stderr lines a fault log shows.
	stderrTailLines = 8
	// outputLines is how many lines of stdout and stderr together one
	// instance (one room) may log per outputInterval; the lines past it
	// are dropped and counted, and one warning says how many. A guest
	// printing in a loop (20,000 lines in one event were seen) then costs
	// the log at most this much per room and second, which is more than
	// a guest's diagnostics need.
	outputLines    = 100
	outputInterval = time.Second
)

// lineSplitter turns a byte stream into lines, holding at most max bytes of
// an unfinished line. It is the io.Writer a guest's stdout or stderr writes
// to (fd_write). Not safe for concurrent use: one instance runs one call at a
// time.
type lineSplitter struct {
	max  int
	buf  []byte
	emit func(line []byte, cut bool) // cut: the line goes on in the next piece
}

// Write splits p into lines. It never fails, so a guest's fd_write always
// succeeds.
func (w *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		// Fill the buffer up to max; a full buffer is emitted as a cut
		// piece.
		for len(w.buf)+len(chunk) > w.max {
			take := w.max - len(w.buf)
			w.buf = append(w.buf, chunk[:take]...)
			chunk = chunk[take:]
			w.emit(w.buf, true)
			w.buf = w.buf[:0]
		}
		w.buf = append(w.buf, chunk...)
		if i < 0 {
			break
		}
		w.emit(w.buf, false)
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits an unfinished line.
func (w *lineSplitter) Flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf, false)
		w.buf = w.buf[:0]
	}
}

// guestOutput routes one instance's stdout and stderr to the log, one record
// per line tagged with the room id, at most outputLines per outputInterval,
// and remembers the last stderr lines for the fault log (dropped lines
// included: a fault's last words matter most when the guest went wild).
type guestOutput struct {
	logger *slog.Logger
	stdout lineSplitter
	stderr lineSplitter
	tail   [stderrTailLines]string
	next   int // index in tail of the oldest line
	count  int
	total  int // stderr lines ever, for stderrSince

	// The rate limit: a fixed window, which costs a line one time.Now.
	// The first line dropped in a window arms report, which logs the
	// count when the window ends: the guest may not write again for a
	// long time, and the operator should hear of the drop soon. mu guards
	// these fields against report, which runs on a timer goroutine.
	mu      sync.Mutex
	window  time.Time   // when the current interval began
	logged  int         // lines logged in it
	dropped int         // lines dropped since the last warning
	report  *time.Timer // armed while dropped > 0
}

func newGuestOutput(logger *slog.Logger) *guestOutput {
	o := &guestOutput{logger: logger}
	o.stdout = lineSplitter{max: maxLineBytes, emit: func(line []byte, cut bool) {
		o.log("stdout", line, cut)
	}}
	o.stderr = lineSplitter{max: maxLineBytes, emit: func(line []byte, cut bool) {
		o.log("stderr", line, cut)
		o.tail[o.next] = string(line)
		o.next = (o.next + 1) % len(o.tail)
		o.count = min(o.count+1, len(o.tail))
		o.total++
	}}
	return o
}

func (o *guestOutput) log(stream string, line []byte, cut bool) {
	if !o.logger.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	if !o.admit() {
		return
	}
	attrs := []slog.Attr{slog.String("stream", stream)}
	if cut {
		attrs = append(attrs, slog.Bool("cut", true))
	}
	o.logger.LogAttrs(context.Background(), slog.LevelInfo, string(line), attrs...)
}

// admit takes one line from the window's budget, or counts it dropped.
func (o *guestOutput) admit() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now := time.Now(); now.Sub(o.window) >= outputInterval {
		o.window, o.logged = now, 0
	}
	if o.logged < outputLines {
		o.logged++
		return true
	}
	if o.dropped++; o.dropped == 1 {
		wait := outputInterval - time.Since(o.window)
		if o.report == nil {
			o.report = time.AfterFunc(wait, o.reportDropped)
		} else {
			o.report.Reset(wait)
		}
	}
	return false
}

// reportDropped logs how many lines were dropped since it last did, if
// any: one warning per window with drops.
func (o *guestOutput) reportDropped() {
	o.mu.Lock()
	n := o.dropped
	o.dropped = 0
	o.mu.Unlock()
	if n > 0 {
		o.logger.LogAttrs(context.Background(), slog.LevelWarn, "guest output over its rate limit: lines dropped",
			slog.Int("dropped", n), slog.Int("limit_lines", outputLines), slog.Duration("per", outputInterval))
	}
}

// Flush logs unfinished lines, and at once how many were dropped, and
// stops the report timer: the instance is ending.
func (o *guestOutput) Flush() {
	o.stdout.Flush()
	o.stderr.Flush()
	o.mu.Lock()
	if o.report != nil {
		o.report.Stop()
	}
	o.mu.Unlock()
	o.reportDropped()
}

// StderrTail returns the last stderr lines, oldest first, joined by
// newlines.
func (o *guestOutput) StderrTail() string {
	lines := make([]string, 0, o.count)
	for i := range o.count {
		lines = append(lines, o.tail[(o.next-o.count+i+len(o.tail))%len(o.tail)])
	}
	return strings.Join(lines, "\n")
}

// stderrMark returns a mark for stderrSince: call it before a call into
// the guest.
func (o *guestOutput) stderrMark() int { return o.total }

// stderrSince flushes stderr and returns the lines written since mark (the
// last stderrTailLines of them), joined by newlines: what the guest said
// during one call, for the error of that call.
func (o *guestOutput) stderrSince(mark int) string {
	o.stderr.Flush()
	n := min(o.total-mark, o.count)
	lines := make([]string, 0, n)
	for i := range n {
		lines = append(lines, o.tail[(o.next-n+i+len(o.tail))%len(o.tail)])
	}
	return strings.Join(lines, "\n")
}
