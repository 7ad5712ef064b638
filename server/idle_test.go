package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// TestIdleConnectionsHoldOneGoroutine checks the idle design (doc.go,
// "Goroutines"): once a client has talked and gone quiet, its connection
// holds one goroutine, the reader waiting for its next message; the writer
// has ended and the HTTP handler that upgraded it has returned.
func TestIdleConnectionsHoldOneGoroutine(t *testing.T) {
	_, ts := startServer(t, stateroom.New(func(string) fanout { return fanout{} }), Options{})
	// A first connection starts what lives as long as the server (the
	// heartbeat sweeper); count from after it.
	warm := dial(t, ts, "/ws/warm")
	send(t, warm, "hi")
	expect(t, warm, "hi")
	base := runtime.NumGoroutine()

	const n = 20
	for i := range n {
		c := dial(t, ts, fmt.Sprintf("/ws/idle-%d", i))
		for j := range 3 { // each message grows the reader's and writer's stacks
			msg := strings.Repeat("x", 100*j)
			send(t, c, msg)
			expect(t, c, msg)
		}
	}
	// Each gorilla client has no goroutine of its own while nobody reads.
	eventually(t, func() bool { return runtime.NumGoroutine()-base == n },
		"one goroutine per idle connection (%d connections)", n)
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
