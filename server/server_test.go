package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// TestStaticFS serves a page from a file system value, as a binary that
// embeds its page does.
func TestStaticFS(t *testing.T) {
	var log eventLog
	page := fstest.MapFS{"index.html": {Data: []byte("embedded page")}}
	_, ts := startServer(t, probeFactory(&log, ""), Options{StaticFS: page})
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "embedded page" {
		t.Errorf("GET / = %d %q, want 200 %q", resp.StatusCode, body, "embedded page")
	}
}

func TestRoutes(t *testing.T) {
	static, client := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(static, "index.html"), []byte("static page"), 0o644)
	os.WriteFile(filepath.Join(client, "lib.js"), []byte("client lib"), 0o644)
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{StaticDir: static, ClientDir: client, MaxRoomIDLength: 10})

	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}}
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		status int
		body   string
	}{
		{
			name:   "status",
			path:   "/status",
			status: http.StatusOK,
			body:   "ok",
		},
		{
			name:   "plain GET of a room",
			path:   "/ws/lobby",
			status: http.StatusUpgradeRequired,
			body:   "WebSocket endpoint",
		},
		{
			name:   "plain GET of the default room",
			path:   "/ws",
			status: http.StatusUpgradeRequired,
			body:   "WebSocket endpoint",
		},
		{
			name:   "room id too long",
			path:   "/ws/abcdefghijk",
			header: upgrade,
			status: http.StatusBadRequest,
			body:   "limit is 10",
		},
		{
			name:   "empty room id",
			path:   "/ws/",
			header: upgrade,
			status: http.StatusBadRequest,
			body:   "empty room id",
		},
		{
			name:   "bad handshake",
			path:   "/ws/lobby",
			header: upgrade, // no Sec-WebSocket-Key
			status: http.StatusBadRequest,
			body:   "Sec-WebSocket-Key",
		},
		{
			name:   "static dir",
			path:   "/index.html",
			status: http.StatusOK,
			body:   "static page",
		},
		{
			name:   "client dir",
			path:   "/client/lib.js",
			status: http.StatusOK,
			body:   "client lib",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := httpGet(t, ts.URL+tc.path, tc.header)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s: got %d %q, want %d containing %q", tc.path, status, body, tc.status, tc.body)
			}
		})
	}

	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(ts.URL+"/ws/lobby", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("got %d, want 405", resp.StatusCode)
		}
	})
	t.Run("percent-decoded id", func(t *testing.T) {
		c := dial(t, ts, "/ws/a%2Fb")
		expectPrefix(t, c, "hello 1 room=a/b ")
	})
	t.Run("default room", func(t *testing.T) {
		c := dial(t, ts, "/ws")
		expectPrefix(t, c, "hello 1 room=default ")
	})
	if n := log.count("CONCURRENT CALL"); n != 0 {
		t.Errorf("%d concurrent calls", n)
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	var log eventLog
	s, err := New(probeFactory(&log, ""), Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/app/", http.StripPrefix("/app", s))
	ts := httptest.NewServer(mux)
	t.Cleanup(func() { // after the client's own cleanup closed it
		s.Shutdown(context.Background())
		ts.Close()
	})

	c := dial(t, ts, "/app/ws/x%2Fy")
	expectPrefix(t, c, "hello 1 room=x/y ")
	if status, body := httpGet(t, ts.URL+"/app/status", nil); status != 200 || body != "ok" {
		t.Errorf("status: got %d %q", status, body)
	}
}

func TestFactoryErrors(t *testing.T) {
	var log eventLog
	good := probeFactory(&log, "")
	f := stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
		switch id {
		case "secret":
			return nil, fmt.Errorf("no game %q here: %w", id, stateroom.ErrRoomRefused)
		case "broken":
			return nil, errors.New("database unavailable")
		case "nil":
			return nil, nil
		case "panics":
			panic("factory bug")
		}
		return good.NewService(id)
	})
	_, ts := startServer(t, f, Options{})
	for _, tc := range []struct {
		room   string
		status int
		body   string
	}{
		{
			room:   "secret",
			status: http.StatusForbidden,
			body:   `no game "secret" here`,
		},
		{
			room:   "broken",
			status: http.StatusInternalServerError,
			body:   "database unavailable",
		},
		{
			room:   "nil",
			status: http.StatusInternalServerError,
			body:   "nil service",
		},
		{
			room:   "panics",
			status: http.StatusInternalServerError,
			body:   "factory panicked: factory bug",
		},
	} {
		_, err := dialWith(t, ts, "/ws/"+tc.room, nil)
		if err == nil {
			t.Fatalf("room %s: dial succeeded, want HTTP %d", tc.room, tc.status)
		}
		he, ok := errors.AsType[*client.HandshakeError](err)
		if !ok || he.Status != tc.status || !strings.Contains(he.Message, tc.body) {
			t.Errorf("room %s: got %v, want HTTP %d containing %q", tc.room, err, tc.status, tc.body)
		}
	}
	// The server keeps running.
	c := dial(t, ts, "/ws/fine")
	expectPrefix(t, c, "hello 1 room=fine")
}

func TestOptionsValidation(t *testing.T) {
	var log eventLog
	f := probeFactory(&log, "")
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		opts  Options
		field string
	}{
		{
			opts:  Options{RoomGracePeriod: -5 * time.Second},
			field: "RoomGracePeriod",
		},
		{
			opts:  Options{HeartbeatInterval: -1},
			field: "HeartbeatInterval",
		},
		{
			opts:  Options{HeartbeatTimeout: time.Second, HeartbeatInterval: 2 * time.Second},
			field: "HeartbeatTimeout",
		},
		{
			opts:  Options{WriteTimeout: -1},
			field: "WriteTimeout",
		},
		{
			opts:  Options{MaxMessageSize: -1},
			field: "MaxMessageSize",
		},
		{
			opts:  Options{SendQueueMessages: -1},
			field: "SendQueueMessages",
		},
		{
			opts:  Options{SendQueueBytes: -1},
			field: "SendQueueBytes",
		},
		{
			opts:  Options{MaxRoomIDLength: -1},
			field: "MaxRoomIDLength",
		},
		{
			opts:  Options{MaxRoomIDLength: 3},
			field: "DefaultRoom",
		},
		{
			opts:  Options{StaticDir: filepath.Join(t.TempDir(), "missing")},
			field: "StaticDir",
		},
		{
			opts:  Options{ClientDir: file},
			field: "ClientDir",
		},
		{
			opts:  Options{StaticDir: t.TempDir(), StaticFS: fstest.MapFS{}},
			field: "StaticFS",
		},
	} {
		_, err := New(f, tc.opts)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v): got %v, want ErrInvalidOptions naming %s", tc.opts, err, tc.field)
		}
	}
	if _, err := New(nil, Options{}); err == nil || !strings.Contains(err.Error(), "stateroom.New") {
		t.Errorf("New(nil): got %v, want an error saying how to build a factory", err)
	}
	opts := Options{RoomGracePeriod: EndRoomsImmediately, AllowedOrigins: []string{"https://a.example"}}
	if _, err := New(f, opts); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(opts, Options{RoomGracePeriod: EndRoomsImmediately, AllowedOrigins: []string{"https://a.example"}}) {
		t.Errorf("New changed the caller's options: %+v", opts)
	}
	for _, g := range []time.Duration{KeepRoomsForever, EndRoomsImmediately} {
		if _, err := New(f, Options{RoomGracePeriod: g}); err != nil {
			t.Errorf("RoomGracePeriod %v: %v", g, err)
		}
	}
}

func TestShutdown(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{})
	a := dial(t, ts, "/ws/a")
	ha := expectPrefix(t, a, "hello 1 room=a")
	b := dial(t, ts, "/ws/b")
	hb := expectPrefix(t, b, "hello 1 room=b")

	// The clients read while the server shuts down, so they answer its
	// close frames (package client always reads).
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, c := range []*client.Conn{a, b} {
		wg.Go(func() { errs <- checkClose(c, stateroom.CloseGoingAway, "server shutting down") })
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if d := time.Since(start); d > DefaultWriteTimeout/2 {
		t.Errorf("Shutdown took %v: it waited for close answers the clients had sent", d)
	}
	for _, hello := range []string{ha, hb} {
		inst := strings.TrimPrefix(hello[strings.Index(hello, "inst="):], "inst=")
		inst = strings.TrimSpace(inst)
		for _, ev := range []string{inst + " disconnect 1", inst + " close"} {
			if log.count(ev) != 1 {
				t.Errorf("want event %q once; log: %q", ev, log.snapshot())
			}
		}
	}
	// New connections are refused; Shutdown is idempotent.
	if _, err := dialWith(t, ts, "/ws/a", nil); err == nil {
		t.Error("dial after Shutdown: connected, want 503")
	} else if he, ok := errors.AsType[*client.HandshakeError](err); !ok || he.Status != http.StatusServiceUnavailable {
		t.Errorf("dial after Shutdown: got %v, want 503", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if len(s.Rooms()) != 0 {
		t.Errorf("rooms after Shutdown: %v", s.Rooms())
	}
}

func TestShutdownContextExpires(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{})
	raw := dialRaw(t, ts, "/ws/a") // never answers the close frame
	log.waitFor(t, fmt.Sprintf("%d connect 1", instances.Load()))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: got %v, want context.DeadlineExceeded", err)
	}
	// The remaining sockets were closed, so a second call finishes.
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel2()
	if err := s.Shutdown(ctx2); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	raw.Close()
}

func TestSwapFactory(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, "v1"), Options{})
	c := dial(t, ts, "/ws/r")
	if h := expectPrefix(t, c, "hello 1 room=r"); !strings.HasSuffix(h, " v1") {
		t.Fatalf("hello from %q, want v1", h)
	}
	s.SwapFactory(probeFactory(&log, "v2"))
	expectClose(t, c, stateroom.CloseServiceRestart, "service restarted")
	c2 := dial(t, ts, "/ws/r")
	if h := expectPrefix(t, c2, "hello 1 room=r"); !strings.HasSuffix(h, " v2") {
		t.Fatalf("hello from %q after SwapFactory, want v2", h)
	}
	s.SwapFactory(nil) // ignored
	send(t, c2, "echo:still here")
	expect(t, c2, "still here")
}

func TestCloseRoomAndRooms(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{})
	if s.CloseRoom("nope", 4100, "x") {
		t.Error("CloseRoom of an unknown room reported true")
	}
	a1 := dial(t, ts, "/ws/a")
	expectPrefix(t, a1, "hello 1")
	a2 := dial(t, ts, "/ws/a")
	expectPrefix(t, a2, "hello 2")
	b := dial(t, ts, "/ws/b")
	expectPrefix(t, b, "hello 1")

	rooms := s.Rooms()
	if len(rooms) != 2 || rooms[0].ID != "a" || rooms[0].Clients != 2 || rooms[1].ID != "b" || rooms[1].Clients != 1 {
		t.Fatalf("Rooms: %+v", rooms)
	}
	if rooms[0].Created.IsZero() || rooms[0].LastActivity.Before(rooms[0].Created) {
		t.Errorf("Rooms times: %+v", rooms[0])
	}

	if !s.CloseRoom("a", 4100, "bye") {
		t.Fatal("CloseRoom(a) reported false")
	}
	expectClose(t, a1, 4100, "bye")
	expectClose(t, a2, 4100, "bye")
	if rooms := s.Rooms(); len(rooms) != 1 || rooms[0].ID != "b" {
		t.Errorf("Rooms after CloseRoom: %+v", rooms)
	}
	// A code a server may not send becomes CloseRoomClosed.
	if !s.CloseRoom("b", 1005, "odd") {
		t.Fatal("CloseRoom(b) reported false")
	}
	expectClose(t, b, stateroom.CloseRoomClosed, "odd")
}

func TestServeAndListenAndServe(t *testing.T) {
	var log eventLog
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, probeFactory(&log, ""), Options{Logger: quietLogger}) }()

	c := dialURL(t, "ws://"+addr+"/ws/x", client.Options{})
	expectPrefix(t, c, "hello 1 room=x")

	// The port is taken: ListenAndServe says so and suggests another.
	err = ListenAndServe(context.Background(), addr, probeFactory(&log, ""), Options{Logger: quietLogger})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "another port") {
		t.Errorf("ListenAndServe on a busy port: got %v", err)
	}

	cancel()
	expectClose(t, c, stateroom.CloseGoingAway, "server shutting down")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return after cancel")
	}

	// Invalid options fail before listening.
	if err := ListenAndServe(context.Background(), "127.0.0.1:0", probeFactory(&log, ""), Options{MaxMessageSize: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("ListenAndServe with bad options: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger used by many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestLogAttributes(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{Logger: logger})
	c := dial(t, ts, "/ws/logs")
	expectPrefix(t, c, "hello 1 room=logs")
	send(t, c, "panic")
	expectClose(t, c, stateroom.CloseServiceFault, "service fault")

	want := map[string]bool{"client connected": false, "service panicked; ending the room": false}
	eventually(t, func() bool {
		for _, line := range buf.lines() {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			msg, _ := rec["msg"].(string)
			if _, ok := want[msg]; !ok || rec["room"] != "logs" {
				continue
			}
			if msg == "client connected" && rec["client"] != float64(1) {
				continue
			}
			if msg == "service panicked; ending the room" && (rec["panic"] != "boom" || !strings.Contains(rec["stack"].(string), "probe")) {
				continue
			}
			want[msg] = true
		}
		return want["client connected"] && want["service panicked; ending the room"]
	}, "log lines with room and client attributes; got %q", buf.lines())
}
