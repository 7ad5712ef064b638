package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Connect latency end points (Report.ConnectTo).
const (
	ConnectToFirstReply = "first reply"
	ConnectToHandshake  = "handshake"
)

// greetWait is how long the first connection of a conns run waits for a
// message from its room, to learn whether the service sends one on
// connect, and, when it did, how long every later connection waits for
// its own. Long enough for a new room of a WebAssembly module on a busy
// machine (tens of milliseconds); a service that stays silent costs the
// run this once, and that wait is left out of Elapsed and Duration.
const greetWait = time.Second

// Conns opens Conns idle connections spread over Rooms rooms and measures
// the setup rate, the connect latency and, with ServerPID, the server's
// resident memory before, with them open (after Hold) and after closing
// them (after Hold again). Duration bounds the connecting; the holds come
// on top. Connections do not read while idle, so keep Hold below the
// server's heartbeat timeout.
//
// The connect latency runs from starting to dial to the room's first
// message when the service sends one on connect (as the counter example
// does; it then includes the service's Connect), else to the completed
// WebSocket handshake. Both include creating the room, which a Stateroom
// server does before it answers the handshake. The first connection is made
// alone and waits up to greetWait for a message to tell which: the report
// says which in ConnectTo.
func Conns(ctx context.Context, opts Options) (*Report, error) {
	o, err := opts.withDefaults("conns")
	if err != nil {
		return nil, err
	}
	r := newRun("conns", o)
	rep := &Report{Mode: "conns", URL: o.URL, Rooms: o.Rooms, Conns: o.Conns}
	if o.ServerPID != 0 {
		if rep.RSSBefore, err = processRSS(o.ServerPID); err != nil {
			return nil, err
		}
	}
	conns := make([]*conn, o.Conns)
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}
	defer closeAll()

	firstCtx, cancelFirst := context.WithTimeout(ctx, o.Duration+greetWait)
	defer cancelFirst()
	var (
		mu        sync.Mutex // guards times and ungreeted
		times     connectTimes
		ungreeted int
	)
	cpu := startCPU(o.ServerPID)
	start := r.since()
	// The first connection, alone: does the service greet?
	r.setPhase("connect", int64(o.Conns), nil)
	greets, waited, err := firstConn(firstCtx, r, o, conns, &times)
	// Duration bounds the connecting, not the wait for a greeting that
	// never came.
	dialCtx, cancel := context.WithTimeout(ctx, o.Duration-(r.since()-start-waited))
	defer cancel()
	if err == nil && o.Conns > 1 {
		err = r.forEach(dialCtx, "connect", o.Conns-1, o.Concurrency, func(ctx context.Context, i int) error {
			i++ // 0 was the first connection
			t0 := r.since()
			c, err := dial(ctx, o.roomURL(i%o.Rooms))
			conns[i] = c
			if err != nil {
				return err
			}
			hs := r.since() - t0
			// Once the first room greeted, every connection waits up to
			// greetWait for its greeting: a service may greet only a
			// room's first client (or some clients), and which connection
			// creates a room is a race between connections to it.
			greeted := greets
			if greets {
				var ne net.Error
				switch err := c.firstMessage(ctx, greetWait); {
				case err == nil:
				case errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
					greeted = false
				default:
					return fmt.Errorf("room %d: waiting for the first message, which the run's first room sent on connect: %w", i%o.Rooms, err)
				}
			}
			d := r.since() - t0
			mu.Lock()
			defer mu.Unlock()
			times.handshake.record(hs)
			switch {
			case greeted || !greets:
				times.connect.record(d)
			default:
				ungreeted++
			}
			return nil
		})
	}
	rep.Elapsed = (r.since() - start - waited).Seconds()
	rep.Ungreeted = ungreeted
	cpuErr := cpu.stop(rep)
	lat := times.connect.latency()
	rep.Connect = &lat
	rep.ConnectTo = ConnectToHandshake
	if greets {
		rep.ConnectTo = ConnectToFirstReply
		hs := times.handshake.latency()
		rep.Handshake = &hs
	}
	opened := 0
	for _, c := range conns {
		if c != nil {
			opened++
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		rep.TimedOut = true
	case err != nil:
		return nil, fmt.Errorf("%w (%d of %d connections were open)", err, opened, o.Conns)
	}
	rep.toolBusy()
	rep.Conns = opened
	if rep.Elapsed > 0 {
		rep.ConnsPerSec = float64(opened) / rep.Elapsed
	}
	if opened > 0 {
		rep.ServerCPUPerConnUs = rep.ServerCPU * 1e6 / float64(opened)
	}
	if cpuErr != nil {
		return rep, cpuErr
	}

	r.setPhase("hold", int64(opened), func() int64 { return int64(opened) })
	if err := sleep(ctx, o.Hold); err != nil {
		return rep, err
	}
	if o.ServerPID != 0 {
		if rep.RSSOpen, err = processRSS(o.ServerPID); err != nil {
			return rep, err
		}
		if opened > 0 {
			rep.RSSPerConn = float64(rep.RSSOpen-rep.RSSBefore) / float64(opened)
		}
	}
	r.setPhase("close", int64(opened), nil)
	closeAll()
	if err := sleep(ctx, o.Hold); err != nil {
		return rep, err
	}
	if o.ServerPID != 0 {
		if rep.RSSAfter, err = processRSS(o.ServerPID); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// connectTimes are a conns run's latencies: to the end Report.ConnectTo
// names, and to the handshake.
type connectTimes struct{ connect, handshake histogram }

// firstConn opens connection 0 and waits up to greetWait for its room's
// first message. It records the connection's latencies and reports
// whether the message came, and how long it waited in vain (none came:
// time the run's Elapsed leaves out).
func firstConn(ctx context.Context, r *run, o Options, conns []*conn, times *connectTimes) (greets bool, waited time.Duration, err error) {
	t0 := r.since()
	c, err := dial(ctx, o.roomURL(0))
	if err != nil {
		return false, 0, err
	}
	conns[0] = c
	handshake := r.since() - t0
	times.handshake.record(handshake)
	err = c.firstMessage(ctx, greetWait)
	var ne net.Error
	switch {
	case err == nil:
		times.connect.record(r.since() - t0)
		return true, 0, nil
	case errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
		times.connect.record(handshake)
		return false, r.since() - t0 - handshake, nil
	default:
		return false, 0, fmt.Errorf("room 0: waiting for a first message: %w", err)
	}
}

// firstMessage waits up to wait (and no longer than ctx) for the first
// data message and discards it; on return the connection has no read
// deadline.
func (c *conn) firstMessage(ctx context.Context, wait time.Duration) error {
	dl := time.Now().Add(wait)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	if err := c.nc.SetReadDeadline(dl); err != nil {
		return err
	}
	_, _, err := c.next()
	if rerr := c.nc.SetReadDeadline(time.Time{}); err == nil {
		err = rerr
	}
	return err
}

// sleep waits d or until ctx ends, whichever is first, and returns ctx's
// error in the second case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
