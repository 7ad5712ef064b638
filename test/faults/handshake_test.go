package faults_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
)

// TestUnfinishedHandshakes: connections that never finish their HTTP
// request (nothing sent, half a request line, headers without the blank
// line, headers dripped a byte at a time, an idle keep-alive connection
// after a plain request) are cut by the server run through server.Serve
// within Options.HandshakeTimeout, while healthy clients connect and talk
// meanwhile.
func TestUnfinishedHandshakes(t *testing.T) {
	const (
		handshakeTimeout = 500 * time.Millisecond
		// cutBound is how long a stuck connection may live: ten
		// HandshakeTimeouts, slack for a loaded machine.
		cutBound = 10 * handshakeTimeout
	)
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, ln, relay.Factory(), server.Options{
			HandshakeTimeout: handshakeTimeout,
			Logger:           quietLogger,
		})
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	request := "GET /ws/alive HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	stuck := []struct {
		name string
		// start writes what the connection sends; it may keep writing
		// until stop is closed.
		start func(c net.Conn, stop <-chan struct{})
	}{
		{"nothing sent", func(net.Conn, <-chan struct{}) {}},
		{"half a request line", func(c net.Conn, _ <-chan struct{}) { io.WriteString(c, "GET /ws/al") }},
		{"headers without the blank line", func(c net.Conn, _ <-chan struct{}) { io.WriteString(c, request) }},
		{"headers dripped a byte every 50ms", func(c net.Conn, stop <-chan struct{}) {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i = (i + 1) % len(request) {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := io.WriteString(c, request[i:i+1]); err != nil {
					return // cut by the server
				}
			}
		}},
		{"idle keep-alive after GET /status", func(c net.Conn, _ <-chan struct{}) {
			io.WriteString(c, "GET /status HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}},
	}
	type stuckConn struct {
		name   string
		c      net.Conn
		opened time.Time
	}
	var conns []stuckConn
	stop := make(chan struct{})
	var writers sync.WaitGroup
	defer func() {
		close(stop)
		writers.Wait()
		for _, s := range conns {
			s.c.Close()
		}
	}()
	for _, s := range stuck {
		for range 4 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, stuckConn{s.name, c, time.Now()})
			writers.Go(func() { s.start(c, stop) })
		}
	}

	// Healthy clients connect while the stuck ones hold their sockets,
	// and talk all along.
	tctx := testContext(t)
	g, err := wsclient.JoinGroup(tctx, "ws://"+addr+"/ws/alive", 3, wsclient.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sendAll(t, g)

	// Every stuck connection is cut: reading it ends (EOF, or a reset, or
	// a 408 answer and then EOF) well within cutBound instead of hanging.
	deadline := time.Now().Add(cutBound)
	for _, s := range conns {
		s.c.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, s.c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: still open after %v; the server must cut it after HandshakeTimeout (%v)", s.name, time.Since(s.opened).Round(time.Millisecond), handshakeTimeout)
			continue
		}
		sendAll(t, g)
	}
	if err := g.WaitDelivered(tctx); err != nil {
		t.Fatal(err)
	}
	if sent, _, _ := g.Counts(); sent == 0 {
		t.Fatal("the healthy clients sent nothing: the test did not run traffic")
	}
}
