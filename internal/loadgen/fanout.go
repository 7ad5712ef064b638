package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// fanClient is one client of a fanout run. Fields marked reader are
// written only by the client's reader goroutine and read after it ended.
type fanClient struct {
	c      *conn
	room   int
	global uint64 // global client number
	sender int    // global sender number, or -1 for a receive-only client

	joined atomic.Bool
	unique atomic.Int64 // deliveries that passed the check, for progress and the drain

	streams   []stream      // reader: one per sender of the room
	delivered int64         // reader: frames of bench messages of this room, duplicates included
	dups      int64         // reader
	reordered int64         // reader
	foreign   int64         // reader
	last      time.Duration // reader: time of the last delivery, since the run started
	rtt       *histogram    // reader: round trips of the client's own messages (senders)
	err       error         // reader: why the reader stopped early

	win     chan struct{} // sender: one token per message in flight
	sent    atomic.Int64
	sendErr error // sender goroutine
}

// stream is what one client has seen of one sender.
type stream struct {
	next   uint64   // highest sequence number seen + 1
	seen   []uint64 // bitmap of the sequence numbers seen
	unique int64
}

// observe records seq; it reports whether seq is new, and whether it came
// after a higher one.
func (s *stream) observe(seq uint64) (isNew, late bool) {
	w, bit := seq/64, uint64(1)<<(seq%64)
	for uint64(len(s.seen)) <= w {
		s.seen = append(s.seen, 0)
	}
	if s.seen[w]&bit != 0 {
		return false, false
	}
	s.seen[w] |= bit
	s.unique++
	if seq < s.next {
		return true, true
	}
	s.next = seq + 1
	return true, false
}

// Fanout runs Rooms x Clients connections; Senders clients per room each
// send Messages bench messages with at most Window in flight, and every
// client checks that it got every message of its room exactly once and in
// per-sender order. The report is returned even with an error; the error
// wraps [ErrDelivery] when the check failed.
func Fanout(ctx context.Context, opts Options) (*Report, error) {
	o, err := opts.withDefaults("fanout")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	r := newRun("fanout", o)
	rep := &Report{Mode: "fanout", URL: o.URL, Rooms: o.Rooms, Clients: o.Clients, Senders: o.Senders,
		Window: o.Window, Messages: o.Messages, Size: o.Size}

	n := o.Rooms * o.Clients
	clients := make([]*fanClient, n)
	var readers sync.WaitGroup
	var closing atomic.Bool
	var shutdownOnce sync.Once
	// shutdown closes the connections, then waits for their readers, which
	// end on the closed socket. It runs on every way out.
	shutdown := func() {
		shutdownOnce.Do(func() {
			closing.Store(true)
			for _, f := range clients {
				if f != nil {
					f.c.close()
				}
			}
			readers.Wait()
		})
	}
	defer shutdown()

	err = r.forEach(ctx, "connect", n, o.Concurrency, func(ctx context.Context, i int) error {
		room := i / o.Clients
		c, err := dial(ctx, o.roomURL(room))
		if err != nil {
			return err
		}
		f := &fanClient{c: c, room: room, global: uint64(i), sender: -1, streams: make([]stream, o.Senders)}
		if k := i % o.Clients; k < o.Senders {
			f.sender = room*o.Senders + k
			f.win = make(chan struct{}, o.Window)
			f.rtt = new(histogram)
		}
		clients[i] = f
		readers.Go(func() {
			f.read(r, &o)
			if closing.Load() {
				f.err = nil
			}
		})
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Join: once a client has its own join message back, the room has
	// processed its connection and will relay it every later message.
	joined := func() int64 { return countClients(clients, func(f *fanClient) bool { return f.joined.Load() }) }
	r.setPhase("join", int64(n), joined)
	for _, f := range clients {
		if err := f.c.write(ws.OpText, appendJoin(nil, f.global)); err != nil {
			return nil, fmt.Errorf("loadgen: fanout: sending a join message: %w", err)
		}
	}
	if ok, _ := r.waitStalled(ctx, func() bool { return joined() == int64(n) }, joined); !ok {
		have := joined()
		shutdown()
		err := fmt.Errorf("loadgen: fanout: only %d of %d clients got their own join message back; is the server a relay (it must send every message to everyone in the room, as bench/relay does)?",
			have, n)
		return nil, errors.Join(err, firstErr(clients))
	}

	total := int64(o.Rooms) * int64(o.Clients) * int64(o.Senders) * int64(o.Messages)
	unique := func() int64 {
		var s int64
		for _, f := range clients {
			s += f.unique.Load()
		}
		return s
	}
	r.setPhase("send", total, unique)
	cpu := startCPU(o.ServerPID)
	sendStart := r.since()
	stop := make(chan struct{})
	var senders sync.WaitGroup
	var sendersLeft atomic.Int64
	for _, f := range clients {
		if f.sender >= 0 {
			sendersLeft.Add(1)
			senders.Go(func() {
				defer sendersLeft.Add(-1)
				f.send(r, &o, stop)
			})
		}
	}
	complete := func() bool {
		if sendersLeft.Load() != 0 {
			return false
		}
		var sent int64
		for _, f := range clients {
			sent += f.sent.Load()
		}
		return unique() == sent*int64(o.Clients)
	}
	finished, stalled := r.waitStalled(ctx, complete, unique)
	close(stop)
	senders.Wait()
	cpuErr := cpu.stop(rep)
	rep.TimedOut, rep.Stalled = !finished, stalled
	shutdown()

	var rtt histogram
	last := sendStart
	sent := make([]int64, o.Rooms*o.Senders)
	for _, f := range clients {
		if f.sender >= 0 {
			sent[f.sender] = f.sent.Load()
			rep.Sent += sent[f.sender]
			rtt.merge(f.rtt)
		}
		last = max(last, f.last)
	}
	for _, f := range clients {
		rep.Delivered += f.delivered
		rep.Duplicates += f.dups
		rep.Reordered += f.reordered
		rep.Foreign += f.foreign
		for s := range f.streams {
			rep.Lost += sent[f.room*o.Senders+s] - f.streams[s].unique
		}
	}
	rep.Expected = rep.Sent * int64(o.Clients)
	rep.Elapsed = (last - sendStart).Seconds()
	if rep.Elapsed > 0 {
		rep.FramesPerSec = float64(rep.Delivered) / rep.Elapsed
	}
	rep.toolBusy()
	lat := rtt.latency()
	rep.RTT = &lat
	if rep.Delivered > 0 {
		rep.ToolCPUPerFrameNs = rep.ToolCPU * 1e9 / float64(rep.Delivered)
		rep.ServerCPUPerFrameNs = rep.ServerCPU * 1e9 / float64(rep.Delivered)
	}

	var errs []error
	if rep.Lost+rep.Duplicates+rep.Reordered != 0 {
		errs = append(errs, fmt.Errorf("%w: %d lost, %d duplicated, %d reordered of %d expected deliveries",
			ErrDelivery, rep.Lost, rep.Duplicates, rep.Reordered, rep.Expected))
		if rep.Lost != 0 && rep.TimedOut {
			errs = append(errs, fmt.Errorf("loadgen: the run stopped with deliveries outstanding (%s); a server that is only slow, or starved of CPU, shows as loss here: raise --stall or --duration to tell", stopReason(rep)))
		}
	}
	if err := firstErr(clients); err != nil {
		errs = append(errs, fmt.Errorf("%w (a client's connection ended before the run did)", err))
	}
	if cpuErr != nil {
		errs = append(errs, cpuErr)
	}
	return rep, errors.Join(errs...)
}

// waitStalled is run.wait that also gives up when progress() has not moved
// for StallTimeout; stalled says whether that is why it gave up.
func (r *run) waitStalled(ctx context.Context, cond func() bool, progress func() int64) (ok, stalled bool) {
	lastVal, lastMove := progress(), time.Now()
	ok = r.wait(ctx, func() bool {
		if cond() {
			return true
		}
		if v := progress(); v != lastVal {
			lastVal, lastMove = v, time.Now()
		} else if time.Since(lastMove) > r.o.StallTimeout {
			stalled = true
			return true
		}
		return false
	})
	return ok && !stalled, stalled
}

func countClients(clients []*fanClient, pred func(*fanClient) bool) int64 {
	var n int64
	for _, f := range clients {
		if pred(f) {
			n++
		}
	}
	return n
}

// firstErr returns the first error a reader or sender stopped with.
func firstErr(clients []*fanClient) error {
	for _, f := range clients {
		if f.sendErr != nil {
			return fmt.Errorf("loadgen: sending: %w", f.sendErr)
		}
	}
	for _, f := range clients {
		if f.err != nil {
			return f.err
		}
	}
	return nil
}

// read is the client's reader goroutine: it checks every frame until the
// connection ends.
func (f *fanClient) read(r *run, o *Options) {
	for {
		op, p, err := f.c.next()
		if err != nil {
			f.err = err
			return
		}
		m, err := parseMessage(p)
		if err != nil || op != ws.OpText {
			f.foreign++
			continue
		}
		if m.join {
			if m.client == f.global {
				f.joined.Store(true)
			}
			continue // other clients' joins reach those already in the room only
		}
		s := m.sender - uint64(f.room*o.Senders)
		if m.sender < uint64(f.room*o.Senders) || s >= uint64(o.Senders) || m.seq >= uint64(o.Messages) {
			f.foreign++
			continue
		}
		f.delivered++
		isNew, late := f.streams[s].observe(m.seq)
		if !isNew {
			f.dups++
			continue
		}
		if late {
			f.reordered++
		}
		f.unique.Add(1)
		// Reading the clock costs as much as the rest of a frame: read it
		// for the sender's own messages, and for the last frame of what one
		// read brought (which is the time of the last delivery, the one the
		// report needs, to within one batch).
		own := int(m.sender) == f.sender
		if own || f.c.br.Buffered() == 0 {
			f.last = r.since()
		}
		if own {
			f.rtt.record(f.last - time.Duration(m.nanos))
			select {
			case <-f.win:
			default: // a message this sender never sent: a server bug, not a reason to hang
			}
		}
	}
}

// send is a sender goroutine: Messages messages, at most Window in flight,
// until stop closes. It sends as many messages as the window has room for
// in one write.
func (f *fanClient) send(r *run, o *Options, stop <-chan struct{}) {
	for seq := uint64(0); seq < uint64(o.Messages); {
		select {
		case f.win <- struct{}{}:
		case <-stop:
			return
		}
		n := 1
	more:
		for seq+uint64(n) < uint64(o.Messages) {
			select {
			case f.win <- struct{}{}:
				n++
			default:
				break more
			}
		}
		now := int64(r.since())
		err := f.c.writeMessages(ws.OpText, n, func(i int, dst []byte) []byte {
			return appendMessage(dst, uint64(f.sender), seq+uint64(i), now, o.Size)
		})
		if err != nil {
			f.sendErr = err
			return
		}
		seq += uint64(n)
		f.sent.Add(int64(n))
	}
}

// stopReason says what ended a run before its count.
func stopReason(rep *Report) string {
	if rep.Stalled {
		return "nothing delivered for the stall timeout"
	}
	return "the duration ran out"
}
