package faults_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
	"go.uber.org/goleak"
)

// TestConnectStorm: 10,000 connections come and go, 50 at a time, over 100
// rooms that end as soon as they are empty: a third close properly after a
// round trip, a third vanish right after the handshake, a third vanish in
// the middle of a frame. Afterwards, with the server still running, every
// room has ended, the goroutines are those from before the storm (plus the
// heartbeat sweeper and the poller) and so are the file descriptors. Every
// connection comes from 127.0.0.1 and most create their room anew, so the
// per-address room-creation limit is off: it would refuse the storm after
// 100 rooms, which is its job, not the fault under test.
func TestConnectStorm(t *testing.T) {
	const (
		conns       = 10_000
		concurrency = 50
		rooms       = 100
		stormBound  = 45 * time.Second // the whole storm; it takes a few seconds
	)
	e := start(t, relay.Factory(), server.Options{RoomGracePeriod: server.EndRoomsImmediately, MaxRoomsCreatedPerIP: server.NoLimit})
	fdsBefore := len(openFDs(t))
	ignore := goleak.IgnoreCurrent()

	ctx, cancel := context.WithTimeout(context.Background(), stormBound)
	defer cancel()
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var workers sync.WaitGroup
	began := time.Now()
	for range concurrency {
		workers.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= conns || ctx.Err() != nil {
					return
				}
				if err := stormOne(ctx, e.url(fmt.Sprintf("storm-%d", i%rooms)), int(i)); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err); cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	workers.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if n := done.Load(); n != conns {
		t.Fatalf("only %d of %d connections in %v", n, conns, stormBound)
	}
	t.Logf("%d connections in %v", conns, time.Since(began).Round(time.Millisecond))

	eventually(t, func() bool { return len(e.srv.Rooms()) == 0 }, "every room to end (%d left)", len(e.srv.Rooms()))
	// The heartbeat sweeper and the idle connections' poller live as long
	// as the server; the poller holds two descriptors (epoll, eventfd).
	// The last room's end schedules one memory release (server/memory.go:
	// every room ended after many did), which runs a second later and
	// ends; anything else that stays is a leak.
	deadline := time.Now().Add(waitTimeout)
	for {
		err := goleak.Find(ignore,
			goleak.IgnoreAnyFunction("github.com/stateroom-go/stateroom/server.(*Server).sweep"),
			goleak.IgnoreAnyFunction("github.com/stateroom-go/stateroom/server.(*poller).run"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines left %v after the storm, server still running: %v", waitTimeout, err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	const pollerFDs = 2
	eventually(t, func() bool { return len(openFDs(t)) <= fdsBefore+pollerFDs },
		"file descriptors back to %d + %d", fdsBefore, pollerFDs)
}

// stormOne is one connection of the storm; i picks how it ends.
func stormOne(ctx context.Context, url string, i int) error {
	c, err := wsclient.DialRaw(ctx, url, wsclient.RawOptions{BufferSize: 4096})
	if err != nil {
		return err
	}
	defer c.Close()
	switch i % 3 {
	case 0: // a round trip, then a proper close handshake
		msg := []byte(fmt.Sprintf("storm %d", i))
		if err := c.WriteFrames(wsclient.Message(wsclient.OpText, msg)); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return fmt.Errorf("waiting for the echo: %w", err)
			}
			if f.Op == wsclient.OpText && string(f.Payload) == string(msg) {
				break // the room may relay others' messages first
			}
		}
		if err := c.WriteFrames(wsclient.Message(wsclient.OpClose, wsclient.CloseBody(1000, "bye"))); err != nil {
			return err
		}
		closed, err := c.ReadClose(waitTimeout)
		if err != nil {
			return fmt.Errorf("waiting for the server's close: %w", err)
		}
		if closed.Code != 1000 {
			return fmt.Errorf("the server answered close 1000 with %d %q", closed.Code, closed.Reason)
		}
	case 1: // gone right after the handshake
	case 2: // gone in the middle of a frame
		return c.WriteFrames(wsclient.Frame{Fin: true, Op: wsclient.OpBinary, Masked: true, Length: 100, Payload: []byte("part")})
	}
	return nil
}
