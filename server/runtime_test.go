package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// blocker is a service whose Message blocks until release is closed, as a
// service stuck on a lock or a network call would.
type blocker struct {
	stateroom.BaseService
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blocker) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text("hello"))
}

func (b *blocker) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	if ev.Payload.String() == "block" {
		b.once.Do(func() { close(b.entered) })
		<-b.release
	}
}

// TestShutdownKeepsItsDeadline: a service stuck in Message holds its room's
// lock; Shutdown must still return ctx's error when ctx ends, the stuck
// room's client must still get 1001 (sent directly, its room cannot be
// reached), and another room's client gets 1001 through its room.
func TestShutdownKeepsItsDeadline(t *testing.T) {
	b := &blocker{entered: make(chan struct{}), release: make(chan struct{})}
	// The service is released before the server's own cleanup waits for
	// its goroutines (cleanups run last-registered first).
	s, ts := startServer(t, stateroom.New(func(string) *blocker { return b }), Options{})
	t.Cleanup(func() { close(b.release) })

	stuck := dial(t, ts, "/ws/stuck")
	expect(t, stuck, "hello")
	other := dial(t, ts, "/ws/other")
	expect(t, other, "hello")
	send(t, stuck, "block")
	select {
	case <-b.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the service never blocked")
	}

	errs := make(chan error, 2)
	for _, c := range []*client.Conn{stuck, other} {
		go func() { errs <- checkClose(c, stateroom.CloseGoingAway, "server shutting down") }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Shutdown(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck service: %v, want context.DeadlineExceeded", err)
	}
	// A stuck room would hold Shutdown until the test's cleanup releases
	// it; a bound far above 300 ms tells that apart on a loaded machine.
	if took > 5*time.Second {
		t.Errorf("Shutdown with a 300 ms context took %v, want it to return at its deadline", took)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestGraceRejoinStaysPastGrace: a client who rejoins an empty room within
// its grace period keeps the room for as long as it stays, well past the
// grace; once it leaves, the room lives at least the grace period again.
func TestGraceRejoinStaysPastGrace(t *testing.T) {
	t.Parallel() // it waits out grace periods
	// Long enough for a rejoin on a loaded machine to land within it.
	const grace = 2 * time.Second
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: grace})
	a := dial(t, ts, "/ws/g")
	_, inst := hello(t, a)
	a.Close()
	log.waitFor(t, inst+" disconnect 1")

	b := dial(t, ts, "/ws/g")
	if id, inst2 := hello(t, b); inst2 != inst || id != 2 {
		t.Fatalf("rejoin within grace: client %d of instance %s; want client 2 of %s", id, inst2, inst)
	}
	time.Sleep(grace + grace/2) // the first grace period would have ended the room by now
	send(t, b, "echo:still here")
	expect(t, b, "still here")
	if log.count(inst+" close") != 0 {
		t.Fatal("the room ended under a client who rejoined within its grace period")
	}

	left := time.Now() // before the grace timer can be armed
	b.Close()
	log.waitFor(t, inst+" disconnect 2")
	log.waitFor(t, inst+" close")
	if lived := time.Since(left); lived < grace {
		t.Errorf("the empty room ended %v after its last client left; the grace period is %v", lived, grace)
	}
	eventually(t, func() bool { return len(s.Rooms()) == 0 }, "room to end after the grace period")
}

// TestSendQueueMessageLimit: a client whose queue holds SendQueueMessages
// frames is closed as a slow consumer even though the byte limit is far
// away, so the count limit binds on its own.
func TestSendQueueMessageLimit(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{
		SendQueueMessages: 16,
		SendQueueBytes:    256 << 20,
		WriteTimeout:      time.Minute,
	})
	c := dialRaw(t, ts, "/ws/q") // raw: package client always reads
	// The client reads nothing: 32 MiB fill the sockets' buffers, so
	// the writer blocks and the flood that follows stays queued.
	c.writeFrame(t, ws.MaskFrameWith(ws.NewTextFrame([]byte("bcast:33554432")), [4]byte{1, 2, 3, 4}))
	c.writeFrame(t, ws.MaskFrameWith(ws.NewTextFrame([]byte("flood:100")), [4]byte{1, 2, 3, 4}))
	// Read on, skipping payloads (the big one may or may not have been
	// written before the flood was discarded), until the close.
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			t.Fatalf("no close frame after the flood: %v", err)
		}
		if h.OpCode != ws.OpClose {
			if _, err := io.CopyN(io.Discard, c.br, h.Length); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			t.Fatal(err)
		}
		code, reason := ws.ParseCloseFrameData(p)
		if stateroom.CloseCode(code) != stateroom.CloseSlowConsumer || reason != "slow consumer" {
			t.Fatalf("client past its message-count limit closed with %d %q, want %d", code, reason, stateroom.CloseSlowConsumer)
		}
		return
	}
}

// TestServiceClosesClient: Room.Close sends the client the service's code
// and reason and delivers its Disconnect; codes outside CloseNormal and
// 4100-4999 are refused with an error and close nothing.
func TestServiceClosesClient(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{})
	a := dial(t, ts, "/ws/k")
	_, inst := hello(t, a)
	b := dial(t, ts, "/ws/k")
	bid, _ := hello(t, b)

	send(t, a, fmt.Sprintf("kick:%d:1001:nope", bid))
	got := expectPrefix(t, a, "close error: ")
	if !strings.Contains(got, "4100-4999") {
		t.Errorf("error for code 1001 %q does not say which codes to use", got)
	}
	send(t, b, "echo:b still here")
	expect(t, b, "b still here")

	send(t, a, fmt.Sprintf("kick:%d:4150:go away", bid))
	expectClose(t, b, 4150, "go away")
	log.waitFor(t, fmt.Sprintf("%s disconnect %d", inst, bid))
	expect(t, a, fmt.Sprintf("left %d", bid))
}

// TestClientEchoesServerCloseCode: a client that answers a close with the
// code the server sent (1012-1014 included, which RFC 6455 left to IANA) is
// not told it broke the protocol.
func TestClientEchoesServerCloseCode(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{})
	for _, code := range []stateroom.CloseCode{stateroom.CloseServiceRestart, stateroom.CloseTryAgainLater, 1014, stateroom.CloseRoomClosed, 4100} {
		t.Run(code.String(), func(t *testing.T) {
			c := dialRaw(t, ts, "/ws/echo") // raw: package client closes with 1000 only
			body := ws.NewCloseFrameBody(ws.StatusCode(code), "")
			c.writeFrame(t, ws.MaskFrameWith(ws.NewCloseFrame(body), [4]byte{5, 6, 7, 8}))
			got, reason, _ := c.readUntilClose(t)
			if got != code {
				t.Fatalf("close %d answered with %d %q, want %d", code, got, reason, code)
			}
		})
	}
}

// TestBadHandshakeCreatesNoRoom: a request that asks for a WebSocket but
// whose handshake is incomplete or malformed is refused before its room is
// joined: no factory call, no room, no slot held.
func TestBadHandshakeCreatesNoRoom(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{MaxRooms: 1})
	base := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"}}
	for _, tc := range []struct {
		name   string
		key    []string
		status int
	}{
		{"no key", nil, http.StatusBadRequest},
		{"key not base64", []string{"!!!!!!!!!!!!!!!!!!!!!!=="}, http.StatusBadRequest},
		{"key of 15 bytes", []string{"AAAAAAAAAAAAAAAAAAAA"}, http.StatusBadRequest},
		{"two keys", []string{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := base.Clone()
			h["Sec-Websocket-Key"] = tc.key
			status, body := httpGet(t, ts.URL+"/ws/bad-"+strings.ReplaceAll(tc.name, " ", "-"), h)
			if status != tc.status || !strings.Contains(body, "Sec-WebSocket-Key") {
				t.Fatalf("HTTP %d %q, want %d naming Sec-WebSocket-Key", status, body, tc.status)
			}
		})
	}
	h := base.Clone()
	h.Set("Sec-Websocket-Version", "8")
	h.Set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if status, _ := httpGet(t, ts.URL+"/ws/old", h); status != http.StatusUpgradeRequired {
		t.Errorf("version 8: HTTP %d, want 426", status)
	}
	if rs := s.Rooms(); len(rs) != 0 {
		t.Fatalf("failed handshakes created rooms: %+v", rs)
	}
	if n := len(log.snapshot()); n != 0 {
		t.Fatalf("failed handshakes reached a service: %q", log.snapshot())
	}
	// The one room MaxRooms allows is still free for a real client.
	c := dial(t, ts, "/ws/real")
	hello(t, c)
}

// TestBrowserClientServed: the browser module is served at /stateroom.js,
// as JavaScript, also under a path prefix.
func TestBrowserClientServed(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{})
	for _, url := range []string{ts.URL + "/stateroom.js"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(string(body), "export function connect") {
			t.Fatalf("GET /stateroom.js: HTTP %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/app/", http.StripPrefix("/app", s))
	prefixed := httptest.NewServer(mux)
	defer prefixed.Close()
	if status, _ := httpGet(t, prefixed.URL+"/app/stateroom.js", nil); status != http.StatusOK {
		t.Fatalf("GET /app/stateroom.js under a prefix: HTTP %d", status)
	}
}
