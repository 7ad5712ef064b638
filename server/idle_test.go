package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// TestIdleConnectionsHoldNoGoroutine checks the idle design (doc.go,
// "Goroutines"): once a client has talked and gone quiet, its connection
// parks with the server's poller and holds no goroutine at all (the writer
// has ended, the HTTP handler has returned, and no reader waits), and a
// parked connection wakes for its client's next message.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("readiness polling is Linux-only; elsewhere TestIdleTLSConnectionsHoldOneGoroutine's rule holds")
	}
	s, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), Options{})
	shortParkTick(s)
	checkIdleGoroutines(t, ts, nil, func() bool { parked, all := parkedConns(s); return parked == all }, 0)
	if got := testutil.ToFloat64(s.metrics.parked); got != float64(liveConns(s)) {
		t.Errorf("stateroom_connections_parked = %v with %d connections parked", got, liveConns(s))
	}
}

// TestIdleTLSConnectionsHoldOneGoroutine: a TLS connection may hold
// decrypted bytes the socket's readiness knows nothing of, so it never
// parks; its reader waits, on a fresh goroutine's small stack.
func TestIdleTLSConnectionsHoldOneGoroutine(t *testing.T) {
	_, ts := startServerOn(t, stateroom.New(func(string) fanout { return fanout{} }), Options{}, httptest.NewTLSServer)
	checkIdleGoroutines(t, ts, ts.Client().Transport.(*http.Transport).TLSClientConfig, func() bool { return true }, 1)
}

// checkIdleGoroutines connects n clients that talk and go quiet, checks
// that each holds perConn goroutines of the server, then that each still
// answers, and holds perConn again after. settled reports that every
// quiet client's connection has reached its idle state. tlsConfig is the
// clients' for a TLS server (ts.URL is https://), nil for plain ws://.
func checkIdleGoroutines(t *testing.T, ts *httptest.Server, tlsConfig *tls.Config, settled func() bool, perConn int) {
	t.Helper()
	const n = 20
	clients := make([]*client.Conn, n)
	for i := range clients {
		c := dialURL(t, wsURL(ts, fmt.Sprintf("/ws/idle-%d", i)), client.Options{TLSConfig: tlsConfig})
		for j := range 3 { // each message grows the reader's and writer's stacks
			msg := strings.Repeat("x", 100*j)
			send(t, c, msg)
			expect(t, c, msg)
		}
		clients[i] = c
	}
	// The clients' own goroutines (two per Conn, in package client) do
	// not count: connGoroutines counts the server's.
	want := func() bool { return settled() && connGoroutines() == n*perConn }
	eventually(t, want, "%d goroutines per idle connection (%d connections)", perConn, n)
	for i, c := range clients {
		msg := fmt.Sprintf("wake %d", i)
		send(t, c, msg)
		expect(t, c, msg)
	}
	eventually(t, want, "%d goroutines per idle connection after waking (%d connections)", perConn, n)
}

// TestFrameRightBehindTheHandshake sends the handshake and the first frame
// in one write: the server must find the frame even though the HTTP server
// read it into its buffer with the request.
func TestFrameRightBehindTheHandshake(t *testing.T) {
	_, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), Options{})
	nc, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitTimeout))
	req := "GET /ws/eager HTTP/1.1\r\nHost: " + ts.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	frame := ws.MustCompileFrame(ws.MaskFrameWith(ws.NewTextFrame([]byte("early bird")), [4]byte{1, 2, 3, 4}))
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s, want 101", resp.Status)
	}
	got, err := readFrame(br)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if got.Header.OpCode != ws.OpText || string(got.Payload) != "early bird" {
		t.Fatalf("got %v %q, want the text \"early bird\" back", got.Header.OpCode, got.Payload)
	}
}

// shortParkTick makes s park quiet connections within milliseconds; call
// it before the first connection.
func shortParkTick(s *Server) {
	s.quietBeforePark.Store(int64(5 * time.Millisecond))
}

// connGoroutines counts the goroutines running a connection's code (its
// reader or writer), of any server: counting all goroutines would also
// count those of servers that earlier tests are still shutting down.
func connGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "server.(*conn).") {
			count++
		}
	}
	return count
}

// parkedServer starts a server with n clients (package client, tapped:
// see dialTapped) in one room that have each talked and gone quiet, and
// waits until their connections are parked. The clients still answer
// pings and close frames, by themselves.
func parkedServer(t *testing.T, opts Options, n int) (*Server, []*client.Conn, []*tappedConn) {
	t.Helper()
	clients := make([]*client.Conn, n)
	sockets := make([]*tappedConn, n)
	s := startParked(t, opts, n, func(ts *httptest.Server, i int) (func(string), func(int, string)) {
		clients[i], sockets[i] = dialTapped(t, ts, "/ws/parked")
		return func(msg string) { send(t, clients[i], msg) }, func(j int, msg string) { expect(t, clients[j], msg) }
	})
	return s, clients, sockets
}

// parkedRawServer is parkedServer with raw clients that, once quiet, read
// nothing and answer nothing: no ping, no close frame.
func parkedRawServer(t *testing.T, opts Options, n int) (*Server, []*rawConn) {
	t.Helper()
	clients := make([]*rawConn, n)
	s := startParked(t, opts, n, func(ts *httptest.Server, i int) (func(string), func(int, string)) {
		clients[i] = dialRaw(t, ts, "/ws/parked")
		return func(msg string) { clients[i].sendText(t, msg) }, func(j int, msg string) { clients[j].expectText(t, msg) }
	})
	return s, clients
}

// startParked starts a fanout server for parkedServer and parkedRawServer
// and joins n clients one by one: join connects client i and returns how
// it sends and how client j expects a message.
func startParked(t *testing.T, opts Options, n int, join func(ts *httptest.Server, i int) (say func(string), hear func(j int, msg string))) *Server {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("readiness polling is Linux-only")
	}
	s, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), opts)
	shortParkTick(s)
	for i := range n {
		say, hear := join(ts, i)
		msg := fmt.Sprintf("hello %d", i)
		say(msg)
		for j := range i + 1 {
			hear(j, msg) // fanout relays to everyone
		}
	}
	eventually(t, func() bool { parked, _ := parkedConns(s); return parked == n }, "%d connections to park", n)
	return s
}

// parkedConns counts the connections s holds, and those of them parked.
func parkedConns(s *Server) (parked, all int) {
	s.conns.each(func(c *conn) {
		all++
		if c.parked.Load() {
			parked++
		}
	})
	return parked, all
}

// liveConns is the number of connections the server still holds.
func liveConns(s *Server) int {
	return s.conns.count()
}

// TestParkedConnectionNoticesHangup: a client that vanishes without a close
// frame while its connection is parked must still leave its room; the
// poller's watch covers hangups, not just data.
func TestParkedConnectionNoticesHangup(t *testing.T) {
	s, _, sockets := parkedServer(t, Options{}, 1)
	sockets[0].Conn.Close() // beneath the client: no close frame
	eventually(t, func() bool { return liveConns(s) == 0 }, "the server to drop the vanished client")
}

// TestParkedConnectionClosedBySilence: the heartbeat closes a silent
// parked client, and the close handshake's deadline must end the
// connection even though the client never answers (nor reads): the server
// has to take the connection out of the poller to wait with a deadline.
func TestParkedConnectionClosedBySilence(t *testing.T) {
	s, _ := parkedRawServer(t, Options{
		HeartbeatInterval: 100 * time.Millisecond,
		HeartbeatTimeout:  250 * time.Millisecond,
		WriteTimeout:      100 * time.Millisecond,
	}, 1)
	eventually(t, func() bool { return liveConns(s) == 0 }, "the server to drop the silent client")
}

// TestParkedConnectionGetsMessages: a parked connection still receives
// (writing needs no reader), and wakes for its own client's message.
func TestParkedConnectionGetsMessages(t *testing.T) {
	_, cs, _ := parkedServer(t, Options{}, 2)
	send(t, cs[0], "to everyone")
	expect(t, cs[0], "to everyone")
	expect(t, cs[1], "to everyone")
}

// TestParkedConnectionsAtShutdown: Shutdown closes parked connections with
// the going-away code, and returns once they are gone.
func TestParkedConnectionsAtShutdown(t *testing.T) {
	s, cs, _ := parkedServer(t, Options{}, 3)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	for _, c := range cs {
		expectClose(t, c, stateroom.CloseGoingAway, "server shutting down")
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := liveConns(s); n != 0 {
		t.Fatalf("%d connections left after Shutdown", n)
	}
}

// TestParkedConnectionAbortedWhenShutdownExpires: a parked client that
// never answers the close frame is cut off when Shutdown's context ends,
// before WriteTimeout: the abort must reach a connection with no reader.
func TestParkedConnectionAbortedWhenShutdownExpires(t *testing.T) {
	s, _ := parkedRawServer(t, Options{WriteTimeout: time.Minute}, 2) // the clients do not read
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's deadline (the clients never answer)", err)
	}
	eventually(t, func() bool { return liveConns(s) == 0 }, "the aborted connections to end")
}

// TestParkedConnectionAbortedWhileItsWriterIsStuck: when Shutdown's context
// ends while a parked client's writer is stuck on a full socket, aborting
// must close the socket and also start a reader, the only one that ends
// the connection: a closed socket gives the poller no event.
func TestParkedConnectionAbortedWhileItsWriterIsStuck(t *testing.T) {
	s, cs := parkedRawServer(t, Options{WriteTimeout: time.Minute, SendQueueBytes: 256 << 20}, 2)
	var quiet *conn // the server's side of cs[1], which neither reads nor sends
	s.conns.each(func(c *conn) {
		if c.nc.RemoteAddr().String() == cs[1].LocalAddr().String() {
			quiet = c
		}
	})
	// cs[0] floods the room (fanout relays to both clients, neither reads)
	// until the quiet client's socket is full and its writer stuck.
	big := strings.Repeat("x", 64<<10)
	stuck := func() bool {
		quiet.mu.Lock()
		defer quiet.mu.Unlock()
		return quiet.queued > 1<<20 // more than a megabyte waits behind the full socket
	}
	for i := 0; i < 2048 && !stuck(); i++ {
		cs[0].sendText(t, big)
	}
	eventually(t, stuck, "the quiet client's writer to be stuck")
	if !quiet.parked.Load() {
		t.Fatal("the quiet client's connection is not parked")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's deadline (the writers are stuck)", err)
	}
	eventually(t, func() bool { return liveConns(s) == 0 }, "the aborted connections to end")
}

// TestParkedConnectionParksAgainAfterPong: the heartbeat's ping makes the
// client answer with a pong, which wakes its parked connection; with no
// message behind the pong, the reader must park again rather than block
// inside the frame reader until the next message.
func TestParkedConnectionParksAgainAfterPong(t *testing.T) {
	s, _, sockets := parkedServer(t, Options{
		// Far longer than the quiet time before parking (5 ms here), so a
		// loaded machine still parks between two pongs.
		HeartbeatInterval: 200 * time.Millisecond,
		// Far longer than a pong can take on a loaded machine: a client
		// closed for silence would get no more pings.
		HeartbeatTimeout: 10 * time.Second,
	}, 1)
	// The client answers pings by itself; its socket counts the pongs.
	eventually(t, func() bool { return sockets[0].out.count(ws.OpPong) >= 3 }, "three pongs to the server's heartbeat")
	// Three pongs have woken the connection; it must be parked again
	// between heartbeats.
	eventually(t, func() bool { parked, _ := parkedConns(s); return parked == 1 }, "the connection to park again after answering pings")
}
