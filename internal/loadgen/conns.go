package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Conns opens Conns idle connections spread over Rooms rooms and measures
// the setup rate and, with ServerPID, the server's resident memory before,
// with them open (after Hold) and after closing them (after Hold again).
// Duration bounds the connecting; the holds come on top. Connections do
// not read while idle, so keep Hold below the server's heartbeat timeout.
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

	dialCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	cpu := startCPU(o.ServerPID)
	start := r.since()
	err = r.forEach(dialCtx, "connect", o.Conns, o.Concurrency, func(ctx context.Context, i int) error {
		c, err := dial(ctx, o.roomURL(i%o.Rooms))
		conns[i] = c
		return err
	})
	rep.Elapsed = (r.since() - start).Seconds()
	cpuErr := cpu.stop(rep)
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
