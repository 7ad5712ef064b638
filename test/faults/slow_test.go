package faults_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
)

// TestSlowConsumer: one client completes the handshake and never reads,
// among 49 healthy ones, while 100,000 messages are broadcast to all. The
// healthy clients get every message in order; the stalled one is closed
// with CloseSlowConsumer once its bounded queue fills; the heap stays
// bounded throughout.
//
// The healthy clients are raw clients (package wsclient) rather than
// gorilla ones: 4.9 million frames through gorilla's reader take over a
// minute under the race detector, and the raw reader parses a frame in
// place in its read buffer.
func TestSlowConsumer(t *testing.T) {
	const (
		clients  = 50
		messages = 100_000
		batch    = 250 // messages per write of the sender
		window   = 2   // batches in flight: the healthy queues never hold more
		size     = 256 // payload bytes: the sequence number, then padding
		queue    = 2048
		// heapBound bounds the growth of HeapInuse over the run. The
		// healthy queues hold at most window*batch frames (shared between
		// the 49 queues) and the stalled one at most `queue`, so the
		// growth is mostly garbage awaiting the collector: about 10 MiB
		// measured. An unbounded queue for the stalled client would keep
		// all 100,000 frames (26 MiB, plus its slice): 33 MiB measured
		// with SendQueueMessages and SendQueueBytes set huge.
		heapBound = 20 << 20
		// keptBound bounds what is still in use after the run and a
		// collection, every client still connected: measured 3 MiB.
		keptBound = 10 << 20
	)
	var _ [queue - window*batch]struct{} // the healthy clients' queues must not fill
	e := start(t, relay.Factory(), server.Options{
		SendQueueMessages: queue,
		MessageRate:       server.NoLimit, // the sender floods on purpose
		// The stalled client's writer blocks in one write for as long as
		// the run lasts; the test reads the close frame behind it at the
		// end, so that write must not time out first.
		WriteTimeout: time.Minute,
	})
	ctx := testContext(t)
	const room = "slow"

	// The stalled client reads nothing until the end. (Not with a tiny
	// SO_RCVBUF: on loopback a receive window below one MSS is never
	// advertised, and the server would then wait for TCP's persist timer
	// long after the client starts reading.)
	stalled, err := wsclient.DialRaw(ctx, e.url(room), wsclient.RawOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.Close() })

	healthy := make([]*wsclient.Raw, clients-1)
	received := make([]atomic.Int64, len(healthy))
	errs := make(chan error, len(healthy))
	var readers sync.WaitGroup
	t.Cleanup(readers.Wait) // after the clients are closed below
	for i := range healthy {
		c, err := wsclient.DialRaw(ctx, e.url(room), wsclient.RawOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		healthy[i] = c
		readers.Go(func() { errs <- readSequence(c, &received[i], messages) })
	}
	eventually(t, func() bool { return e.clients(room) == clients }, "%d clients in the room (have %d)", clients, e.clients(room))

	// The baseline is taken with every client connected, so the bounds
	// measure what the messages cost, not the connections' buffers.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	peak, stopSampling := sampleHeap(t)

	sender := healthy[0]
	frames := make([]wsclient.Frame, batch)
	payloads := make([]byte, batch*size)
	minReceived := func() int64 {
		m := int64(messages)
		for i := range received {
			m = min(m, received[i].Load())
		}
		return m
	}
	for seq := 0; seq < messages; seq += batch {
		if inFlight := seq - window*batch; inFlight > 0 {
			eventually(t, func() bool {
				// A reader that stopped (dropped, out of order, a
				// frame it cannot read) never catches up: say why
				// now rather than after the wait.
				select {
				case err := <-errs:
					t.Fatalf("a healthy client stopped reading before message %d: %v", inFlight, err)
				default:
				}
				return minReceived() >= int64(inFlight)
			}, "every healthy client to receive %d messages (slowest has %d)", inFlight, minReceived())
		}
		for i := range frames {
			p := payloads[i*size : (i+1)*size]
			binary.BigEndian.PutUint64(p, uint64(seq+i))
			frames[i] = wsclient.Message(wsclient.OpBinary, p)
		}
		if err := sender.WriteFrames(frames...); err != nil {
			t.Fatalf("sending message %d: %v", seq, err)
		}
	}
	for range healthy {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	stopSampling()
	if t.Failed() {
		return
	}

	// The stalled client was closed: it has left the room, and what it
	// reads now is an in-order prefix of the messages, then the close.
	eventually(t, func() bool { return e.clients(room) == clients-1 }, "the stalled client to be dropped (room has %d clients)", e.clients(room))
	var got atomic.Int64
	err = readSequence(stalled, &got, messages)
	closed, ok := err.(closedError)
	if !ok {
		t.Fatalf("stalled client: %v; want its messages in order, then a close frame", err)
	}
	if closed.Code != stateroom.CloseSlowConsumer {
		t.Errorf("stalled client closed with %d %q, want %d (CloseSlowConsumer)", closed.Code, closed.Reason, stateroom.CloseSlowConsumer)
	}
	if got.Load() >= messages {
		t.Errorf("stalled client got all %d messages: the test did not stall it", got.Load())
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(peak()) - int64(before.HeapInuse)
	t.Logf("stalled client got %d messages before its close; HeapInuse before %d KiB, peak %d KiB, after %d KiB",
		got.Load(), before.HeapInuse>>10, peak()>>10, after.HeapInuse>>10)
	if growth > heapBound {
		t.Errorf("HeapInuse grew by %d KiB during the run, more than the bound of %d KiB", growth>>10, heapBound>>10)
	}
	if d := int64(after.HeapInuse) - int64(before.HeapInuse); d > keptBound {
		t.Errorf("HeapInuse after the run is %d KiB above before it: memory was kept", d>>10)
	}
}

// closedError ends readSequence when the server sent a close frame.
type closedError struct{ wsclient.Closed }

func (e closedError) Error() string {
	return fmt.Sprintf("closed by the server with %d %q", e.Code, e.Reason)
}

// readSequence reads binary messages whose first 8 bytes are sequence
// numbers 0, 1, 2... counting them in *n, until n messages (nil) or the
// server's close frame (closedError), or an error.
func readSequence(c *wsclient.Raw, n *atomic.Int64, want int64) error {
	for n.Load() < want {
		// The deadline bounds a wait without progress, not the whole
		// run: on a busy machine 100,000 messages to 49 clients can take
		// longer than any fixed bound would allow.
		if n.Load()%256 == 0 {
			c.SetReadDeadline(time.Now().Add(waitTimeout))
		}
		f, err := c.ReadFrame()
		if err != nil {
			return fmt.Errorf("after %d messages: %w", n.Load(), err)
		}
		switch f.Op {
		case wsclient.OpClose:
			var cl wsclient.Closed
			cl.Code, cl.Reason = wsclient.ParseClose(f.Payload)
			return closedError{cl}
		case wsclient.OpBinary:
			if len(f.Payload) < 8 || !f.Fin {
				return fmt.Errorf("after %d messages: a %d-byte frame (fin %v)", n.Load(), len(f.Payload), f.Fin)
			}
			if seq := int64(binary.BigEndian.Uint64(f.Payload)); seq != n.Load() {
				return fmt.Errorf("got message %d, want %d", seq, n.Load())
			}
			n.Add(1)
		}
	}
	return nil
}

// sampleHeap samples HeapInuse every 20 ms until stop is called (or the
// test ends), and peak returns the largest sample.
func sampleHeap(t *testing.T) (peak func() uint64, stop func()) {
	var max atomic.Uint64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > max.Load() {
				max.Store(ms.HeapInuse)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); wg.Wait() }) }
	t.Cleanup(stop)
	return max.Load, stop
}
