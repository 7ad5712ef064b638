package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
)

// Churn creates Rooms fresh rooms, Concurrency at a time: each is one
// connection that sends one bench message, waits for it to come back and
// closes. It reports rooms per second, the latency from starting to connect
// to the reply, and with ServerPID the server's CPU time per room.
func Churn(ctx context.Context, opts Options) (*Report, error) {
	o, err := opts.withDefaults("churn")
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	r := newRun("churn", o)
	rep := &Report{Mode: "churn", URL: o.URL, Rooms: o.Rooms, Size: o.Size}

	var (
		mu      sync.Mutex // guards latency and foreign
		latency histogram
		foreign int64
		done    atomic.Int64
	)
	cpu := startCPU(o.ServerPID)
	start := r.since()
	err = r.forEach(runCtx, "churn", o.Rooms, o.Concurrency, func(ctx context.Context, i int) error {
		t0 := r.since()
		c, err := dial(ctx, o.roomURL(i))
		if err != nil {
			return err
		}
		defer c.close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.nc.SetReadDeadline(dl)
		}
		msg := appendMessage(nil, 0, uint64(i), int64(t0), o.Size)
		if err := c.write(ws.OpText, msg); err != nil {
			return fmt.Errorf("room %d: sending: %w", i, err)
		}
		var skipped int64
		for {
			_, p, err := c.next()
			if err != nil {
				return fmt.Errorf("room %d: waiting for the reply: %w", i, err)
			}
			if bytes.Equal(p, msg) {
				break
			}
			skipped++ // not ours: the server greets, or is not a relay
		}
		d := r.since() - t0
		mu.Lock()
		latency.record(d)
		foreign += skipped
		mu.Unlock()
		done.Add(1)
		return nil
	})
	elapsed := r.since() - start
	cpuErr := cpu.stop(rep)
	rep.Elapsed = elapsed.Seconds()
	rep.RoomsDone = done.Load()
	rep.Foreign = foreign
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		rep.TimedOut, err = true, nil
	case err != nil:
		err = fmt.Errorf("%w (%d of %d rooms were done)", err, rep.RoomsDone, o.Rooms)
	}
	if rep.Elapsed > 0 {
		rep.RoomsPerSec = float64(rep.RoomsDone) / rep.Elapsed
	}
	if rep.RoomsDone > 0 {
		rep.ServerCPUPerRoomUs = rep.ServerCPU * 1e6 / float64(rep.RoomsDone)
	}
	rep.toolBusy()
	lat := latency.latency()
	rep.FirstReply = &lat
	return rep, errors.Join(err, cpuErr)
}
