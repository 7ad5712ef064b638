package server

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// Slow consumers are closed by what they fail to take, not by how many
// messages they are sent (issue 15): these tests drive real servers.

// TestBurstReachesReadingClient: one event that sends a client 5,000
// messages reaches a client that reads, whole and in order, although the
// socket takes them far slower than the room queues them (its buffers are
// small, as a client's across a real network are). With the queue bounded
// at 1,024 messages the client was closed with 4000.
func TestBurstReachesReadingClient(t *testing.T) {
	t.Parallel()
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{})
	c, socket := dialTapped(t, ts, "/ws/burst") // the socket, to shrink its buffer
	_, inst := hello(t, c)
	shrinkBuffers(t, s, socket.Conn)
	const n, size = 5000, 100
	send(t, c, fmt.Sprintf("seq:%d:%d", n, size))
	for i := range n {
		p, err := recv(c)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		if want := seqMessage(i, size); p.Binary || string(p.Data) != want {
			t.Fatalf("message %d is %q (binary %v), want %q", i, p.Data, p.Binary, want)
		}
	}
	send(t, c, "echo:still here")
	expect(t, c, "still here")
	if n := log.count(inst + " disconnect 1"); n != 0 {
		t.Fatal("the reading client was disconnected")
	}
}

// rawHello reads the probe's hello on c and returns the room instance.
func rawHello(t *testing.T, c *rawConn) (inst string) {
	t.Helper()
	f, err := readFrame(c.br)
	if err != nil {
		t.Fatalf("no hello: %v", err)
	}
	m := helloRE.FindStringSubmatch(string(f.Payload))
	if m == nil {
		t.Fatalf("got %q, want a hello", f.Payload)
	}
	return m[3]
}

// shrinkBuffers makes the kernel buffer little between the server and the
// client nc, the only client of s: the server's send buffer and nc's
// receive buffer, so what the client has not read stays in the server's
// hands instead of megabytes of loopback buffers.
func shrinkBuffers(t *testing.T, s *Server, nc net.Conn) {
	t.Helper()
	const small = 16 << 10
	if err := nc.(*net.TCPConn).SetReadBuffer(small); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return s.conns.count() == 1 }, "the client to be live")
	s.conns.each(func(c *conn) {
		if err := c.nc.(*net.TCPConn).SetWriteBuffer(small); err != nil {
			t.Error(err)
		}
	})
}

// TestSlowReaderGetsLargeMessage: a client that reads steadily but slowly
// gets a 4 MiB message although taking all of it lasts longer than
// WriteTimeout: the timeout bounds how long the client accepts nothing,
// not the whole write. The client takes at most 16 KiB per 20 ms (800
// KB/s, so 4 MiB last at least 5.2 s against a WriteTimeout of 2 s), while
// it leaves a 64 KiB chunk waiting about 80 ms (25 times less than the
// timeout, for a loaded machine). Written under one deadline, the message
// closed the client after WriteTimeout.
func TestSlowReaderGetsLargeMessage(t *testing.T) {
	t.Parallel()
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{WriteTimeout: 2 * time.Second, SendQueueBytes: 8 << 20})
	c := dialRaw(t, ts, "/ws/slowread") // raw: it reads the message a few bytes at a time
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	inst := rawHello(t, c)
	shrinkBuffers(t, s, c.Conn)

	const size = 4 << 20
	c.writeFrame(t, ws.MaskFrameWith(ws.NewTextFrame(fmt.Appendf(nil, "bcast:%d", size)), [4]byte{1, 2, 3, 4}))
	h, err := ws.ReadHeader(c.br)
	if err != nil || h.OpCode != ws.OpBinary || h.Length != size {
		t.Fatalf("got %+v, %v; want a binary frame of %d bytes", h, err, size)
	}
	buf := make([]byte, 16<<10)
	for got := 0; got < size; {
		n, err := io.ReadFull(c.br, buf[:min(len(buf), size-got)])
		got += n
		if err != nil {
			t.Fatalf("the slow reader was cut off after %d of %d bytes: %v", got, size, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.writeFrame(t, ws.MaskFrameWith(ws.NewTextFrame([]byte("echo:still here")), [4]byte{1, 2, 3, 4}))
	if f, err := readFrame(c.br); err != nil || string(f.Payload) != "still here" {
		t.Fatalf("after the message: %q, %v; want the echo", f.Payload, err)
	}
	if n := log.count(inst + " disconnect 1"); n != 0 {
		t.Fatal("the slow reader was disconnected")
	}
}

// TestStoppedReaderIsClosed: a client that stops reading is closed as a
// slow consumer, by either bound, with its memory bounded meanwhile.
func TestStoppedReaderIsClosed(t *testing.T) {
	t.Parallel()
	// Its room keeps sending: the queue reaches SendQueueBytes (never
	// more) and the client is closed with 4000, its queue dropped; read
	// at last, the socket holds what fitted, then the close.
	t.Run("queue full", func(t *testing.T) {
		t.Parallel()
		var log eventLog
		s, ts := startServer(t, probeFactory(&log, ""), Options{})
		fast := dial(t, ts, "/ws/stop")
		_, inst := hello(t, fast)
		stopped := dialRaw(t, ts, "/ws/stop") // raw: package client would read into its buffer
		log.waitFor(t, inst+" connect 2")
		const size = 64 << 10
		kicked := false
		for i := 0; i < 1000 && !kicked; i++ {
			send(t, fast, fmt.Sprintf("bcast:%d", size))
			for {
				binary, got := read(t, fast)
				if binary && len(got) == size {
					break
				}
				kicked = kicked || got == "left 2"
			}
			s.conns.each(func(c *conn) {
				c.mu.Lock()
				if c.queued > c.byteLimit {
					t.Errorf("queue over its bound: %d bytes, the limit is %d", c.queued, c.byteLimit)
				}
				c.mu.Unlock()
			})
		}
		if !kicked {
			expect(t, fast, "left 2")
		}
		code, reason, _ := stopped.readUntilClose(t)
		if code != stateroom.CloseSlowConsumer || reason != "slow consumer" {
			t.Fatalf("stopped reader closed with %d %q, want %d", code, reason, stateroom.CloseSlowConsumer)
		}
		checkMetrics(t, ts.URL+"/metrics", map[string]float64{"stateroom_slow_consumer_disconnects_total": 1})
	})
	// One burst and then silence: the queue never fills, but the client
	// accepts nothing for WriteTimeout and is closed all the same (a
	// close frame cannot get past the bytes it does not read: the socket
	// is closed).
	t.Run("no progress", func(t *testing.T) {
		t.Parallel()
		var log eventLog
		s, ts := startServer(t, probeFactory(&log, ""), Options{WriteTimeout: time.Second})
		c := dialRaw(t, ts, "/ws/stall") // raw: it reads nothing after its hello
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		inst := rawHello(t, c)
		shrinkBuffers(t, s, c.Conn)
		c.writeFrame(t, ws.MaskFrameWith(ws.NewTextFrame([]byte("bcast:2097152")), [4]byte{1, 2, 3, 4}))
		log.waitFor(t, inst+" disconnect 1")
		checkMetrics(t, ts.URL+"/metrics", map[string]float64{"stateroom_slow_consumer_disconnects_total": 1})
		eventually(t, func() bool { return s.conns.count() == 0 }, "the stalled connection to end")
	})
}
