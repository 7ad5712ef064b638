package server

// Regression tests for the abuse findings of issue 15: each drives a real
// server (httptest) with real WebSocket clients, package client or the
// raw-frame client of helpers_test.go (for frames package client never
// sends, and for silence), and fails without its fix. None depends on
// the machine being fast: bounds on time are lower bounds (a rate the
// server must not beat), and waits are polls bounded by long deadlines.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// recorder is a service that records the text messages it gets, per
// client, in the order it gets them, and echoes each one that starts with
// "echo:".
type recorder struct {
	stateroom.BaseService
	mu   *sync.Mutex
	got  map[stateroom.ClientID][]string
	gone map[stateroom.ClientID]bool
}

func newRecorder() (*recorder, stateroom.Factory) {
	r := &recorder{mu: new(sync.Mutex), got: map[stateroom.ClientID][]string{}, gone: map[stateroom.ClientID]bool{}}
	return r, stateroom.New(func(string) *recorder { return r })
}

func (r *recorder) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	r.mu.Lock()
	r.got[ev.Client] = append(r.got[ev.Client], string(ev.Payload.Data))
	r.mu.Unlock()
	if text, ok := strings.CutPrefix(string(ev.Payload.Data), "echo:"); ok {
		room.Send(stateroom.To(ev.Client), stateroom.Text(text))
	}
}

func (r *recorder) Disconnect(_ stateroom.Room, ev stateroom.DisconnectEvent) {
	r.mu.Lock()
	r.gone[ev.Client] = true
	r.mu.Unlock()
}

// messages returns what client sent so far, and whether it has left.
func (r *recorder) messages(client stateroom.ClientID) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[client]), r.gone[client]
}

// longWait bounds the waits of tests whose work takes seconds by design
// (a client held to its rate), with room for a loaded machine.
const longWait = 2 * time.Minute

// eventuallyWithin is eventually with its own bound.
func eventuallyWithin(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// masked masks f as a client frame.
func masked(f ws.Frame) ws.Frame { return ws.MaskFrameWith(f, [4]byte{1, 2, 3, 4}) }

// frames compiles fs into one byte string, to be written in one go.
func frames(fs ...ws.Frame) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		if err := ws.WriteFrame(&b, masked(f)); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

// TestFastSenderIsThrottled (issue 15, finding 1): a client sending far
// faster than the default MessageRate is throttled, not closed: every one of
// its 1,000 messages reaches the service, in order, and it stays connected.
func TestFastSenderIsThrottled(t *testing.T) {
	t.Parallel()
	rec, f := newRecorder()
	s, ts := startServer(t, f, Options{})
	c := dial(t, ts, "/ws/fast")
	const n = 1000
	start := time.Now()
	writeErr := make(chan error, 1)
	go func() { // the sends block once the server stops reading: TCP backpressure, then a full send queue
		ctx, cancel := context.WithTimeout(context.Background(), longWait)
		defer cancel()
		for i := range n {
			if err := c.Send(ctx, stateroom.Text(strconv.Itoa(i))); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	eventuallyWithin(t, longWait, func() bool {
		got, gone := rec.messages(1)
		return len(got) == n || gone
	}, "%d messages", n)
	elapsed := time.Since(start)
	if err := <-writeErr; err != nil {
		t.Fatalf("write: %v", err)
	}
	got, gone := rec.messages(1)
	if gone {
		t.Fatalf("the fast sender was disconnected after %d messages", len(got))
	}
	for i, m := range got {
		if m != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: out of order or lost", i, m)
		}
	}
	// The messages past the burst came at the rate: the server may not
	// deliver them faster, however fast the machine.
	if minimum := time.Duration(float64(n-DefaultMessageBurst) / DefaultMessageRate * float64(time.Second)); elapsed < minimum*9/10 {
		t.Errorf("%d messages reached the service in %v; at %d/s past a burst of %d that takes %v", n, elapsed, DefaultMessageRate, DefaultMessageBurst, minimum)
	}
	if got := testutil.ToFloat64(s.metrics.throttled); got < 1 {
		t.Errorf("stateroom_clients_throttled_total = %v, want at least 1", got)
	}
	if got := testutil.ToFloat64(s.metrics.rateLimited); got != 0 {
		t.Errorf("stateroom_rate_limited_disconnects_total = %v, want 0", got)
	}
	// Still connected and within its rate again: a message goes through.
	send(t, c, "echo:still here")
	expect(t, c, "still here")
}

// TestThrottledClientIsNotSilent: the heartbeat must not take a throttled
// client for a silent one. The raw client never answers a ping; the server
// reads its messages one every 2 s, longer apart than HeartbeatTimeout.
// It is still connected when its last message is read, and only then,
// silent, closed with 4001.
func TestThrottledClientIsNotSilent(t *testing.T) {
	t.Parallel()
	rec, f := newRecorder()
	_, ts := startServer(t, f, Options{
		MessageRate:       0.5,
		MessageBurst:      1,
		HeartbeatInterval: 200 * time.Millisecond,
		HeartbeatTimeout:  1200 * time.Millisecond,
	})
	c := dialRaw(t, ts, "/ws/throttled") // raw: it answers no ping
	const n = 3
	var batch []ws.Frame
	for i := range n {
		batch = append(batch, ws.NewTextFrame([]byte(fmt.Sprintf("echo:%d", i))))
	}
	if _, err := c.Write(frames(batch...)); err != nil {
		t.Fatal(err)
	}
	// Echoes, pings, then the heartbeat's close once the backlog is read.
	c.SetReadDeadline(time.Now().Add(longWait))
	var echoes []string
	for {
		fr, err := readFrame(c.br)
		if err != nil {
			t.Fatalf("read: %v (after echoes %q)", err, echoes)
		}
		if fr.Header.OpCode == ws.OpText {
			echoes = append(echoes, string(fr.Payload))
		}
		if fr.Header.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(fr.Payload)
			if len(echoes) != n || stateroom.CloseCode(code) != stateroom.CloseHeartbeatTimeout {
				t.Fatalf("closed with %d %q after echoes %q; want all %d echoes, then 4001", code, reason, echoes, n)
			}
			break
		}
	}
	if got, _ := rec.messages(1); len(got) != n {
		t.Fatalf("the service got %q", got)
	}
}

// TestPingFloodIsThrottled (finding 2): pings count against the rate. A
// flood of 300 pings is answered at MessageRate, not at once, and the
// client is neither closed nor loses anything.
func TestPingFloodIsThrottled(t *testing.T) {
	t.Parallel()
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MessageRate: 100, MessageBurst: 10})
	c := dialRaw(t, ts, "/ws/pings") // raw: package client sends no pings
	const pings = 300
	var batch []ws.Frame
	for range pings {
		batch = append(batch, ws.NewPingFrame([]byte("p")))
	}
	batch = append(batch, ws.NewTextFrame([]byte("echo:done")))
	start := time.Now()
	go c.Write(frames(batch...)) // may block while the server throttles; the socket is closed with the test
	c.SetReadDeadline(time.Now().Add(longWait))
	pongs := 0
	for done := false; !done; {
		fr, err := readFrame(c.br)
		if err != nil {
			t.Fatalf("read: %v after %d pongs", err, pongs)
		}
		switch {
		case fr.Header.OpCode == ws.OpPong:
			pongs++
		case fr.Header.OpCode == ws.OpText && string(fr.Payload) == "done":
			done = true
		case fr.Header.OpCode == ws.OpClose:
			code, reason := ws.ParseCloseFrameData(fr.Payload)
			t.Fatalf("closed with %d %q after %d pongs", code, reason, pongs)
		}
	}
	elapsed := time.Since(start)
	if pongs != pings {
		t.Errorf("got %d pongs, want %d", pongs, pings)
	}
	if minimum := time.Duration(pings+1-10) * time.Second / 100; elapsed < minimum*9/10 {
		t.Errorf("%d pings were answered in %v; at 100/s past a burst of 10 that takes %v", pings, elapsed, minimum)
	}
}

// TestPingFloodClosedUnderCloseClient: with MessageRateAction CloseClient a
// ping flood is a flood like any other: 1008.
func TestPingFloodClosedUnderCloseClient(t *testing.T) {
	t.Parallel()
	s, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MessageRate: 1, MessageBurst: 5, MessageRateAction: CloseClient})
	c := dialRaw(t, ts, "/ws/pings") // raw: package client sends no pings
	var batch []ws.Frame
	for range 20 {
		batch = append(batch, ws.NewPingFrame(nil))
	}
	if _, err := c.Write(frames(batch...)); err != nil {
		t.Fatal(err)
	}
	code, reason, _ := c.readUntilClose(t)
	if code != stateroom.ClosePolicyViolation || reason != "message rate limit exceeded" {
		t.Fatalf("closed with %d %q, want 1008", code, reason)
	}
	if got := testutil.ToFloat64(s.metrics.rateLimited); got != 1 {
		t.Errorf("stateroom_rate_limited_disconnects_total = %v, want 1", got)
	}
}

// TestFragmentLimit (finding 2): a message may arrive in up to
// MaxMessageFragments frames (1024 by default); one frame more closes the
// client with 1009 and a reason naming the option, instead of accepting
// a message of 200,000 empty fragments.
func TestFragmentLimit(t *testing.T) {
	t.Parallel()
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{})
	fragmented := func(n int) []byte {
		fs := []ws.Frame{ws.NewFrame(ws.OpText, false, []byte("echo:"))}
		for range n - 2 {
			fs = append(fs, ws.NewFrame(ws.OpContinuation, false, nil))
		}
		return frames(append(fs, ws.NewFrame(ws.OpContinuation, true, []byte("whole")))...)
	}

	ok := dialRaw(t, ts, "/ws/frag") // raw: package client sends every message in one frame
	if _, err := ok.Write(fragmented(DefaultMaxMessageFragments)); err != nil {
		t.Fatal(err)
	}
	ok.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		fr, err := readFrame(ok.br)
		if err != nil {
			t.Fatalf("a message in %d fragments: %v", DefaultMaxMessageFragments, err)
		}
		if fr.Header.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(fr.Payload)
			t.Fatalf("a message in %d fragments closed the client: %d %q", DefaultMaxMessageFragments, code, reason)
		}
		if string(fr.Payload) == "whole" {
			break
		}
	}

	over := dialRaw(t, ts, "/ws/frag")
	go over.Write(fragmented(200_002)) // the server stops reading at 1025; the socket is closed with the test
	code, reason, _ := over.readUntilClose(t)
	if code != stateroom.CloseMessageTooBig || !strings.Contains(reason, "Options.MaxMessageFragments") {
		t.Fatalf("a message in 200,002 fragments: closed with %d %q, want 1009 naming Options.MaxMessageFragments", code, reason)
	}
}

// TestCloseCodeLabelsAreBounded (finding 3): the server answers a client's
// close with the client's code; the metric must not get a series per code
// a client picks.
func TestCloseCodeLabelsAreBounded(t *testing.T) {
	t.Parallel()
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{})
	codes := []ws.StatusCode{3000, 3999, 4004, 1003, 4100, 4999, 1001}
	for _, code := range codes {
		c := dialRaw(t, ts, "/ws/codes") // raw: package client closes with 1000 only
		c.writeFrame(t, masked(ws.NewCloseFrame(ws.NewCloseFrameBody(code, ""))))
		if got, _, _ := c.readUntilClose(t); got != stateroom.CloseCode(code) {
			t.Fatalf("close %d answered with %d", code, got)
		}
	}
	checkMetrics(t, ts.URL+"/metrics", map[string]float64{
		"stateroom_close_codes_sent_total{code=other}":   4, // 3000, 3999, 4004, 1003
		"stateroom_close_codes_sent_total{code=service}": 2, // 4100, 4999
		"stateroom_close_codes_sent_total{code=1001}":    1, // in the server's table
	})
	for key := range scrape(t, ts.URL+"/metrics") {
		label, ok := strings.CutPrefix(key, "stateroom_close_codes_sent_total{code=")
		if !ok {
			continue
		}
		label = strings.TrimSuffix(label, "}")
		if n, err := strconv.Atoi(label); err == nil && closeLabel(stateroom.CloseCode(n)) != label {
			t.Errorf("close code series %q: a client's code became a label", key)
		}
	}
}

// TestOriginScheme (finding 4): the same-origin check compares the scheme:
// a page on https://host:port is not the origin of an http server on
// host:port, nor http:// the origin of a TLS one. Behind a proxy that
// terminates TLS, X-Forwarded-Proto says the scheme, but only when the
// forwarded headers are trusted.
func TestOriginScheme(t *testing.T) {
	t.Parallel()
	f := probeFactory(&eventLog{}, "")
	_, plain := startServer(t, f, Options{})
	_, proxied := startServer(t, f, Options{TrustForwardedFor: true})
	_, secure := startServerOn(t, f, Options{}, httptest.NewTLSServer)
	tlsConfig := secure.Client().Transport.(*http.Transport).TLSClientConfig
	host := func(ts *httptest.Server) string { return ts.Listener.Addr().String() }

	for _, tc := range []struct {
		name   string
		ts     *httptest.Server
		header http.Header
		ok     bool
	}{
		{"http page, http server", plain, http.Header{"Origin": {"http://" + host(plain)}}, true},
		{"https page, http server", plain, http.Header{"Origin": {"https://" + host(plain)}}, false},
		{"https page, TLS server", secure, http.Header{"Origin": {"https://" + host(secure)}}, true},
		{"http page, TLS server", secure, http.Header{"Origin": {"http://" + host(secure)}}, false},
		{"https page behind a TLS proxy", proxied, http.Header{"Origin": {"https://" + host(proxied)}, "X-Forwarded-Proto": {"https"}}, true},
		{"http page behind a TLS proxy", proxied, http.Header{"Origin": {"http://" + host(proxied)}, "X-Forwarded-Proto": {"https"}}, false},
		{"X-Forwarded-Proto untrusted", plain, http.Header{"Origin": {"https://" + host(plain)}, "X-Forwarded-Proto": {"https"}}, false},
		{"default port written in Host only", plain, http.Header{"Origin": {"http://example.test"}, "Host": {"example.test:80"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := client.Options{Header: tc.header}
			u := wsURL(tc.ts, "/ws/scheme")
			if tc.ts == secure {
				opts.TLSConfig, u = tlsConfig, "wss"+strings.TrimPrefix(tc.ts.URL, "https")+"/ws/scheme"
			}
			_, err := tryDial(t, u, opts)
			he, refused := errors.AsType[*client.HandshakeError](err)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Fatal("connected, want 403")
			case !tc.ok && (!refused || he.Status != http.StatusForbidden):
				t.Fatalf("%v, want HTTP 403", err)
			}
		})
	}
}

// TestAllowedHosts (finding 4): DNS rebinding. A page on attacker.test
// whose name resolves to the server sends Host and Origin with that name;
// the same-origin check alone accepts it, AllowedHosts refuses it (421) on
// every route but /status. With AllowedHosts set, the server's own origin
// is accepted next to AllowedOrigins.
func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	f := probeFactory(&eventLog{}, "")
	_, open := startServer(t, f, Options{})
	_, pinned := startServer(t, f, Options{AllowedHosts: []string{"127.0.0.1", "*.example.test"}, AllowedOrigins: []string{"https://partner.test"}})
	port := func(ts *httptest.Server) string { return ts.URL[strings.LastIndexByte(ts.URL, ':'):] }
	rebound := func(ts *httptest.Server) http.Header {
		return http.Header{"Host": {"attacker.test" + port(ts)}, "Origin": {"http://attacker.test" + port(ts)}}
	}

	// Today's default: the rebound page gets in.
	c, err := dialWith(t, open, "/ws/h", rebound(open))
	if err != nil {
		t.Fatalf("without AllowedHosts the rebound page is refused: %v", err)
	}
	expectPrefix(t, c, "hello")

	expectRefused(t, pinned, "/ws/h", rebound(pinned), http.StatusMisdirectedRequest, "Options.AllowedHosts")
	for _, path := range []string{"/metrics", "/index.html"} {
		if code, _ := httpGet(t, pinned.URL+path, http.Header{"Host": {"attacker.test"}}); code != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with a foreign Host: %d, want 421", path, code)
		}
	}
	if code, body := httpGet(t, pinned.URL+"/status", http.Header{"Host": {"attacker.test"}}); code != http.StatusOK {
		t.Errorf("GET /status with a foreign Host: %d %q, want 200 (health checks)", code, body)
	}
	// A listed host, by name (a wildcard) or address; its own origin is
	// accepted though AllowedOrigins does not list it; a listed origin too.
	for _, h := range []http.Header{
		{"Origin": {"http://127.0.0.1" + port(pinned)}},
		{"Host": {"app.example.test" + port(pinned)}, "Origin": {"http://app.example.test" + port(pinned)}},
		{"Origin": {"https://partner.test"}},
	} {
		c, err := dialWith(t, pinned, "/ws/h", h)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		expectPrefix(t, c, "hello")
	}
	// Not the bare domain of a wildcard.
	expectRefused(t, pinned, "/ws/h", http.Header{"Host": {"example.test"}}, http.StatusMisdirectedRequest, "AllowedHosts")

	for _, bad := range []string{"http://a.test", "a.test:8080", "a.*.test", "*.", "a.test/x", ""} {
		if _, err := New(f, Options{AllowedHosts: []string{bad}}); err == nil || !strings.Contains(err.Error(), "AllowedHosts") {
			t.Errorf("AllowedHosts %q: got %v, want an error naming AllowedHosts", bad, err)
		}
	}
}

// TestStaticFilesGuarded (finding 5): the static directories and StaticFS
// serve files and directories' index.html only: no symlink out of the
// root, no dotfiles, no directory listing.
func TestStaticFilesGuarded(t *testing.T) {
	t.Parallel()
	dirs := t.TempDir()
	outside := filepath.Join(dirs, "outside")
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644)
	// mk makes a static tree dirs/name, a sibling of outside.
	mk := func(name string) string {
		d := filepath.Join(dirs, name)
		for file, data := range map[string]string{
			"index.html":          "page",
			"app.js":              "js",
			".env":                "TOKEN=secret",
			".git/config":         "[core]",
			"assets/.hidden":      "hidden",
			"assets/logo.txt":     "logo",
			"docs/index.html":     "docs",
			".well-known/x.txt":   "well known",
			"listing/unindexed.1": "one",
		} {
			p := filepath.Join(d, filepath.FromSlash(file))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(data), 0o644)
		}
		for link, target := range map[string]string{
			"abs-link.txt": filepath.Join(outside, "secret.txt"),
			"rel-link.txt": "../outside/secret.txt",
			"out-dir":      outside,
			"in-link.js":   "app.js",
		} {
			if err := os.Symlink(target, filepath.Join(d, link)); err != nil {
				t.Skipf("no symlinks here: %v", err)
			}
		}
		return d
	}
	f := probeFactory(&eventLog{}, "")
	_, dirSrv := startServer(t, f, Options{StaticDir: mk("static"), ClientDir: mk("client")})
	_, fsSrv := startServer(t, f, Options{StaticFS: os.DirFS(mk("fs"))})

	for _, base := range []string{dirSrv.URL, dirSrv.URL + "/client", fsSrv.URL} {
		for _, tc := range []struct {
			path   string
			status int
			body   string
		}{
			{"/", http.StatusOK, "page"},
			{"/app.js", http.StatusOK, "js"},
			{"/in-link.js", http.StatusOK, "js"}, // a link inside the root is fine
			{"/docs/", http.StatusOK, "docs"},
			{"/assets/logo.txt", http.StatusOK, "logo"},
			{"/.well-known/x.txt", http.StatusOK, "well known"},
			{"/abs-link.txt", http.StatusNotFound, ""},
			{"/rel-link.txt", http.StatusNotFound, ""},
			{"/out-dir/secret.txt", http.StatusNotFound, ""},
			{"/.env", http.StatusNotFound, ""},
			{"/.git/config", http.StatusNotFound, ""},
			{"/assets/.hidden", http.StatusNotFound, ""},
			{"/listing/", http.StatusNotFound, ""},
			{"/assets/", http.StatusNotFound, ""},
			{"/listing/unindexed.1", http.StatusOK, "one"},
		} {
			code, body := httpGet(t, base+tc.path, nil)
			if code != tc.status || (tc.body != "" && body != tc.body) || strings.Contains(body, "secret") || strings.Contains(body, "unindexed") && tc.body == "" {
				t.Errorf("GET %s%s: %d %q, want %d %q", base, tc.path, code, body, tc.status, tc.body)
			}
		}
	}
}

// TestMaxRoomsCreatedPerIP (finding 6): one address may create
// MaxRoomsCreatedPerIP rooms a minute; then it gets 429 with Retry-After
// and a message naming the option, while joining a running room stays
// free and another address may still create rooms.
func TestMaxRoomsCreatedPerIP(t *testing.T) {
	t.Parallel()
	const limit = 5 // a room back every 12 s: none comes back during the test
	s, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{MaxRoomsCreatedPerIP: limit, RoomGracePeriod: EndRoomsImmediately, TrustForwardedFor: true})
	from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	// One client creating rooms one after another, each left at once
	// but the first.
	for i := range limit {
		c, err := dialWith(t, ts, fmt.Sprintf("/ws/r%d", i), from("203.0.113.1"))
		if err != nil {
			t.Fatalf("room %d: %v", i, err)
		}
		expectPrefix(t, c, "hello")
		if i > 0 {
			c.Close()
		}
	}
	refusal := expectRefused(t, ts, "/ws/one-more", from("203.0.113.1"), http.StatusTooManyRequests, "Options.MaxRoomsCreatedPerIP")
	if secs, err := strconv.Atoi(refusal.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60/limit {
		t.Errorf("Retry-After %q, want 1 to %d seconds", refusal.Header.Get("Retry-After"), 60/limit)
	}
	for _, r := range s.Rooms() {
		if r.ID == "one-more" {
			t.Error("the refused connection created its room")
		}
	}
	// Joining a running room creates nothing: free.
	c, err := dialWith(t, ts, "/ws/r0", from("203.0.113.1"))
	if err != nil {
		t.Fatalf("joining a running room: %v", err)
	}
	expectPrefix(t, c, "hello 2 room=r0")
	// Another address has its own budget.
	c, err = dialWith(t, ts, "/ws/one-more", from("203.0.113.2"))
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	expectPrefix(t, c, "hello 1 room=one-more")
}

// TestRoomCreationLimitIsOnByDefault: with default Options, one client
// creating rooms as fast as it can is refused after the default budget
// (plus what refilled meanwhile), long before MaxRooms.
func TestRoomCreationLimitIsOnByDefault(t *testing.T) {
	t.Parallel()
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{RoomGracePeriod: EndRoomsImmediately})
	start := time.Now()
	created := 0
	for ; created < DefaultMaxRooms; created++ {
		c, err := dialWith(t, ts, fmt.Sprintf("/ws/r%d", created), nil)
		if err != nil {
			if he, ok := errors.AsType[*client.HandshakeError](err); !ok || he.Status != http.StatusTooManyRequests {
				t.Fatalf("room %d: %v, want a connection or 429", created, err)
			}
			break
		}
		c.Close()
	}
	refill := int(time.Since(start) / (time.Minute / DefaultMaxRoomsCreatedPerIP))
	if created < DefaultMaxRoomsCreatedPerIP || created > DefaultMaxRoomsCreatedPerIP+refill+1 {
		t.Fatalf("one address created %d rooms before a refusal, want %d plus the %d that refilled", created, DefaultMaxRoomsCreatedPerIP, refill)
	}
}

// TestRoomCreationBudgetsArePruned: the per-address budgets cannot grow
// without bound: once an address's budget has refilled its entry goes.
func TestRoomCreationBudgetsArePruned(t *testing.T) {
	tb := newConnTable(NoLimit, NoLimit, 10)
	now := time.Now()
	for i := range 100_000 {
		tb.mu.Lock()
		if retry := tb.chargeCreation("addr"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond)); retry != 0 {
			t.Fatalf("a fresh address was refused")
		}
		n := len(tb.creations)
		tb.mu.Unlock()
		// An entry refills 6 s (6,000 of these steps) after its charge.
		if n > 2*6_000+minPrune {
			t.Fatalf("%d budgets kept after %d addresses", n, i+1)
		}
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if got := tb.chargeCreation("addr", now); got != 0 {
		t.Fatal("first room refused")
	}
	for range 9 {
		tb.chargeCreation("same", now)
	}
	tb.chargeCreation("same", now)
	if retry := tb.chargeCreation("same", now); retry <= 0 || retry > 7*time.Second {
		t.Fatalf("the 11th room in an instant: retry %v, want the 6 s interval", retry)
	}
}

// TestRoomCreationChargesOnlyCreation: MaxRoomsCreatedPerIP charges a join
// only when it creates a room. Rejoining a room in its grace period (no
// client connected, the room still running) is free however often; it
// used to cost a room each time, so a client that reconnected to its own
// room was refused with 429.
func TestRoomCreationChargesOnlyCreation(t *testing.T) {
	t.Parallel()
	const limit = 2
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{MaxRoomsCreatedPerIP: limit, RoomGracePeriod: time.Hour, TrustForwardedFor: true})
	from := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	var inst string
	for i := range 2 * limit {
		c, err := dialWith(t, ts, "/ws/mine", from)
		if err != nil {
			t.Fatalf("join %d of the room in its grace period: %v", i+1, err)
		}
		id, in := hello(t, c)
		if i > 0 && in != inst {
			t.Fatalf("join %d reached instance %s, want the room in its grace period (%s)", i+1, in, inst)
		}
		inst = in
		c.Close()
		log.waitFor(t, fmt.Sprintf("%s disconnect %d", inst, id))
	}
	// One room created so far: one more may be, not two.
	c, err := dialWith(t, ts, "/ws/second", from)
	if err != nil {
		t.Fatalf("the second room: %v", err)
	}
	expectPrefix(t, c, "hello")
	expectRefused(t, ts, "/ws/third", from, http.StatusTooManyRequests, "Options.MaxRoomsCreatedPerIP")
}
