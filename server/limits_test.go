package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

func TestMaxConnections(t *testing.T) {
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MaxConnections: 2})
	a := dial(t, ts, "/ws/a")
	expectPrefix(t, a, "hello")
	b := dial(t, ts, "/ws/b")
	expectPrefix(t, b, "hello")
	resp := expectRefused(t, ts, "/ws/a", nil, http.StatusServiceUnavailable, "Options.MaxConnections")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// A slot frees when a client leaves.
	a.Close()
	eventually(t, func() bool {
		c, err := dialWith(t, ts, "/ws/a", nil)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "a connection once one of two left")
}

func TestMaxConnectionsPerIP(t *testing.T) {
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MaxConnectionsPerIP: 1})
	expectPrefix(t, dial(t, ts, "/ws/a"), "hello")
	resp := expectRefused(t, ts, "/ws/b", nil, http.StatusTooManyRequests, "Options.MaxConnectionsPerIP")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// X-Forwarded-For is not trusted by default: a client cannot dodge
	// the limit by claiming another address.
	expectRefused(t, ts, "/ws/b", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, http.StatusTooManyRequests, "127.0.0.1")
}

func TestTrustForwardedFor(t *testing.T) {
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MaxConnectionsPerIP: 1, TrustForwardedFor: true})
	for _, xff := range []string{"203.0.113.1", "203.0.113.2"} {
		c, err := dialWith(t, ts, "/ws/a", http.Header{"X-Forwarded-For": {xff}})
		if err != nil {
			t.Fatalf("X-Forwarded-For %s: %v", xff, err)
		}
		expectPrefix(t, c, "hello")
	}
	// The last entry is the one the proxy appended; what the client put
	// before it does not count.
	expectRefused(t, ts, "/ws/a", http.Header{"X-Forwarded-For": {"198.51.100.7, 203.0.113.1"}}, http.StatusTooManyRequests, "203.0.113.1")
}

func TestMaxRooms(t *testing.T) {
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MaxRooms: 1, RoomGracePeriod: KeepRoomsForever})
	expectPrefix(t, dial(t, ts, "/ws/a"), "hello 1 room=a")
	resp := expectRefused(t, ts, "/ws/b", nil, http.StatusServiceUnavailable, "Options.MaxRooms")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	expectPrefix(t, dial(t, ts, "/ws/a"), "hello 2 room=a") // joining a running room is fine
}

func TestMaxClientsPerRoom(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{MaxClientsPerRoom: 1})
	first := dial(t, ts, "/ws/a?token=t1")
	expectPrefix(t, first, "hello 1 room=a")

	// The room is full: the newcomer is upgraded and closed with 1013 and
	// a reason a browser can show.
	expectClose(t, dial(t, ts, "/ws/a"), stateroom.CloseTryAgainLater, "room is full")
	// Another room is not.
	expectPrefix(t, dial(t, ts, "/ws/b"), "hello 1 room=b")

	// A reconnection with the token of the connected client replaces it.
	again := dial(t, ts, "/ws/a?token=t1")
	expectClose(t, first, stateroom.CloseReplaced, "replaced by a newer connection with the same token")
	expectPrefix(t, again, "hello 1 room=a")
	if n := log.count("CONCURRENT CALL"); n > 0 {
		t.Fatal("concurrent calls")
	}
}

// TestMessageRate checks MessageRateAction CloseClient; the default,
// Throttle, is TestFastSenderIsThrottled's.
func TestMessageRate(t *testing.T) {
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MessageRate: 0.5, MessageBurst: 3, MessageRateAction: CloseClient})
	c := dial(t, ts, "/ws/a")
	expectPrefix(t, c, "hello")
	// The burst gets through...
	for range 3 {
		send(t, c, "echo:x")
	}
	for range 3 {
		expect(t, c, "x")
	}
	// ...and the next message, long before a token is back (2 s at 0.5/s),
	// closes the client.
	send(t, c, "echo:y")
	expectClose(t, c, stateroom.ClosePolicyViolation, "message rate limit exceeded")
}

// TestHandshakeTimeout checks that Serve drops a client that never
// finishes its HTTP request (a slowloris).
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, ln, probeFactory(&eventLog{}, ""), Options{Logger: quietLogger, HandshakeTimeout: 200 * time.Millisecond})
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET /ws/a HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nc.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err = bufio.NewReader(nc).ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a half-sent request open for %v", time.Since(start))
	}
	// net/http may answer 408 before closing; either way the connection ends.
	if err == nil {
		if rest, _ := io.ReadAll(nc); strings.Contains(string(rest), "101") {
			t.Fatal("the half-sent request was upgraded")
		}
	}
}
