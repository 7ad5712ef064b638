package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait; nothing is asserted about timing.
const waitTimeout = 10 * time.Second

// probe tells each client its id ("<prefix>id:N") on Connect and echoes
// every message, text or binary, to its sender; "close:N" closes the sender
// with code N.
type probe struct {
	stateroom.BaseService
	prefix   string
	connects *atomic.Int32
}

func (p probe) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	if p.connects != nil {
		p.connects.Add(1)
	}
	r.Send(stateroom.To(ev.Client), stateroom.Text(p.prefix+"id:"+ev.Client.String()))
}

func (p probe) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	var code uint16
	if _, err := fmt.Sscanf(ev.Payload.String(), "close:%d", &code); err == nil && ev.Payload.IsText() {
		r.Close(ev.Client, stateroom.CloseCode(code), "asked to")
		return
	}
	r.Send(stateroom.To(ev.Client), ev.Payload)
}

func probeFactory(prefix string, connects *atomic.Int32) stateroom.Factory {
	return stateroom.New(func(string) probe { return probe{prefix: prefix, connects: connects} })
}

// startServer runs a server for f on an httptest server, shut down at the
// end of the test.
func startServer(t *testing.T, f stateroom.Factory, opts server.Options) (*server.Server, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := server.New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
	})
	return s, ts
}

// dial connects with fast reconnection settings and closes the Conn at the
// end of the test.
func dial(t *testing.T, url string, opts client.Options) *client.Conn {
	t.Helper()
	opts.MinDelay = cmpOr(opts.MinDelay, 5*time.Millisecond)
	opts.MaxDelay = cmpOr(opts.MaxDelay, 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// next returns the next message of c.
func next(t *testing.T, c *client.Conn) stateroom.Payload {
	t.Helper()
	select {
	case p, ok := <-c.Messages():
		if !ok {
			t.Fatalf("Messages closed: %v", c.Err())
		}
		return p
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %v (state %v)", waitTimeout, c.State())
	}
	panic("unreachable")
}

func expectText(t *testing.T, c *client.Conn, want string) {
	t.Helper()
	if p := next(t, c); p.Binary || p.String() != want {
		t.Fatalf("got %q (binary %v), want text %q", p.Data, p.Binary, want)
	}
}

func send(t *testing.T, c *client.Conn, p stateroom.Payload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Send(ctx, p); err != nil {
		t.Fatalf("Send(%q): %v", p.Data, err)
	}
}

// waitClosed waits for c to close for good and returns its Err.
func waitClosed(t *testing.T, c *client.Conn) error {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case p, ok := <-c.Messages():
			if !ok {
				<-c.Done()
				return c.Err()
			}
			t.Logf("message while waiting for the close: %q", p.Data)
		case <-timeout:
			t.Fatalf("still %v after %v", c.State(), waitTimeout)
		}
	}
}

// states records a Conn's state changes.
type states struct {
	mu  sync.Mutex
	all []client.State
	ch  chan client.State
}

func newStates() *states { return &states{ch: make(chan client.State, 64)} }

func (s *states) record(st client.State) {
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
	select {
	case s.ch <- st:
	default:
	}
}

func (s *states) waitFor(t *testing.T, want client.State) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case st := <-s.ch:
			if st == want {
				return
			}
		case <-timeout:
			t.Fatalf("state %v not reached within %v", want, waitTimeout)
		}
	}
}

// drain forgets the states recorded so far for waitFor.
func (s *states) drain() {
	for {
		select {
		case <-s.ch:
		default:
			return
		}
	}
}

func (s *states) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.all)
}

func TestSendReceive(t *testing.T) {
	_, ts := startServer(t, probeFactory("", nil), server.Options{})
	st := newStates()
	// A base URL (http://) and a room id that needs percent-encoding.
	c := dial(t, ts.URL, client.Options{Room: "a/b c?d", OnStateChange: st.record})
	if c.State() != client.StateOpen {
		t.Fatalf("state after Dial: %v", c.State())
	}
	expectText(t, c, "id:1")
	send(t, c, stateroom.Text("hello, wörld"))
	expectText(t, c, "hello, wörld")
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	send(t, c, stateroom.Binary(bin))
	if p := next(t, c); !p.Binary || !bytes.Equal(p.Data, bin) {
		t.Fatalf("binary echo: got %v (binary %v)", p.Data, p.Binary)
	}
	big := bytes.Repeat([]byte("x"), 200<<10)
	send(t, c, stateroom.Binary(big))
	if p := next(t, c); !bytes.Equal(p.Data, big) {
		t.Fatalf("big echo: got %d bytes", len(p.Data))
	}
	send(t, c, stateroom.Text(""))
	expectText(t, c, "")
	if err := c.Send(context.Background(), stateroom.Text("\xff")); err == nil {
		t.Fatal("Send of invalid UTF-8 text: no error")
	}

	// The same room by its full URL: the second client of the room.
	c2 := dial(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/a%2Fb%20c%3Fd", client.Options{})
	expectText(t, c2, "id:2")

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := <-c.Messages(); ok {
		t.Fatal("Messages not closed after Close")
	}
	if err := c.Err(); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Err after Close: %v", err)
	}
	if got := st.String(); got != "[connecting open closed]" {
		t.Fatalf("states: %s", got)
	}
}

// proxy forwards TCP connections to a target and can cut them all, so a
// test can drop a connection without a close frame.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(out, in); out.Close() })
		p.wg.Go(func() { io.Copy(in, out); in.Close() })
	}
}

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A connection that drops without a close frame (1006) reconnects with its
// token and gets its client id back, though another client joined since.
func TestReconnectAfterDropKeepsID(t *testing.T) {
	_, ts := startServer(t, probeFactory("", nil), server.Options{})
	px := newProxy(t, ts.Listener.Addr().String())
	st := newStates()
	c := dial(t, "ws://"+px.ln.Addr().String(), client.Options{Room: "drop", Reconnect: true, OnStateChange: st.record})
	if c.Token() == "" {
		t.Fatal("no reconnection token generated")
	}
	expectText(t, c, "id:1")
	other := dial(t, ts.URL+"/ws/drop", client.Options{})
	expectText(t, other, "id:2")

	px.cut()
	st.waitFor(t, client.StateReconnecting)
	expectText(t, c, "id:1") // not id:3
	send(t, c, stateroom.Text("still here"))
	expectText(t, c, "still here")
	if c.State() != client.StateOpen {
		t.Fatalf("state: %v", c.State())
	}
}

// After the service is replaced (1012), the client reconnects by itself to
// the new service, with the same id, and messages queued meanwhile are
// delivered in order.
func TestReconnectAfterServiceRestart(t *testing.T) {
	s, ts := startServer(t, probeFactory("", nil), server.Options{})
	st := newStates()
	c := dial(t, ts.URL, client.Options{Room: "r", Reconnect: true, Token: "my-token", OnStateChange: st.record})
	expectText(t, c, "id:1")

	s.SwapFactory(probeFactory("v2 ", nil))
	expectText(t, c, "v2 id:1")
	if c.Token() != "my-token" {
		t.Fatalf("token %q", c.Token())
	}
	send(t, c, stateroom.Text("after"))
	expectText(t, c, "after")

	// Now a restart whose new service refuses rooms for a while (500, a
	// temporary refusal): the client stays reconnecting, queues, and
	// delivers once the service accepts again.
	var accept atomic.Bool
	gated := stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
		if !accept.Load() {
			return nil, errors.New("not yet")
		}
		return probe{prefix: "v3 "}, nil
	})
	st.drain()
	s.SwapFactory(gated)
	st.waitFor(t, client.StateReconnecting)
	for i := range 5 {
		send(t, c, stateroom.Text(fmt.Sprintf("queued %d", i)))
	}
	send(t, c, stateroom.Binary([]byte{1, 2, 3}))
	if c.State() != client.StateReconnecting {
		t.Fatalf("state while refused: %v", c.State())
	}
	accept.Store(true)
	expectText(t, c, "v3 id:1")
	for i := range 5 {
		expectText(t, c, fmt.Sprintf("queued %d", i))
	}
	if p := next(t, c); !p.Binary || !bytes.Equal(p.Data, []byte{1, 2, 3}) {
		t.Fatalf("queued binary: %v", p)
	}
}

// A full send queue while reconnecting makes Send fail at once.
func TestSendQueueFull(t *testing.T) {
	s, ts := startServer(t, probeFactory("", nil), server.Options{})
	st := newStates()
	c := dial(t, ts.URL, client.Options{Room: "q", Reconnect: true, SendQueue: 3, OnStateChange: st.record})
	expectText(t, c, "id:1")
	s.SwapFactory(stateroom.FactoryFunc(func(string) (stateroom.Service, error) {
		return nil, errors.New("down for maintenance")
	}))
	st.waitFor(t, client.StateReconnecting)
	for i := range 3 {
		send(t, c, stateroom.Text(fmt.Sprint(i)))
	}
	if err := c.Send(context.Background(), stateroom.Text("one too many")); !errors.Is(err, client.ErrQueueFull) {
		t.Fatalf("Send on a full queue: %v", err)
	}
	// Close while reconnecting ends everything.
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := waitClosed(t, c); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Err: %v", err)
	}
}

// Close codes the table says to stop on end the Conn, with a CloseError.
func TestNoReconnect(t *testing.T) {
	cases := []struct {
		name   string
		opts   server.Options
		trig   func(t *testing.T, s *server.Server, c *client.Conn)
		code   stateroom.CloseCode
		reason string
	}{
		{"room closed 4002", server.Options{}, func(t *testing.T, s *server.Server, c *client.Conn) {
			if !s.CloseRoom("stop", 0, "closed by the operator") {
				t.Fatal("CloseRoom: no such room")
			}
		}, stateroom.CloseRoomClosed, "closed by the operator"},
		{"rate limit 1008", server.Options{MessageRate: 1, MessageBurst: 1, MessageRateAction: server.CloseClient}, func(t *testing.T, s *server.Server, c *client.Conn) {
			for i := range 20 {
				if err := c.Send(context.Background(), stateroom.Text(fmt.Sprint(i))); err != nil {
					return
				}
			}
		}, stateroom.ClosePolicyViolation, ""},
		{"service close 4100", server.Options{}, func(t *testing.T, s *server.Server, c *client.Conn) {
			send(t, c, stateroom.Text("close:4100"))
		}, 4100, "asked to"},
		{"service close 1000", server.Options{}, func(t *testing.T, s *server.Server, c *client.Conn) {
			send(t, c, stateroom.Text("close:1000"))
		}, stateroom.CloseNormal, "asked to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var connects atomic.Int32
			s, ts := startServer(t, probeFactory("", &connects), tc.opts)
			st := newStates()
			c := dial(t, ts.URL, client.Options{Room: "stop", Reconnect: true, OnStateChange: st.record})
			expectText(t, c, "id:1")
			tc.trig(t, s, c)
			err := waitClosed(t, c)
			ce, ok := errors.AsType[*client.CloseError](err)
			if !ok || ce.Code != tc.code || (tc.reason != "" && ce.Reason != tc.reason) {
				t.Fatalf("Err = %v, want a CloseError with %d %q", err, tc.code, tc.reason)
			}
			if c.State() != client.StateClosed {
				t.Fatalf("state %v", c.State())
			}
			if got := st.String(); strings.Contains(got, "reconnecting") {
				t.Fatalf("reconnected: states %s", got)
			}
			if n := connects.Load(); n != 1 {
				t.Fatalf("%d connects, want 1", n)
			}
			if err := c.Send(context.Background(), stateroom.Text("x")); err == nil || !strings.Contains(err.Error(), tc.code.String()) {
				t.Fatalf("Send after the close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close after the close: %v", err)
			}
			if !errors.Is(c.Err(), ce) {
				t.Fatalf("Close changed Err to %v", c.Err())
			}
		})
	}
}

// Without Reconnect, a 1012 ends the Conn.
func TestNoReconnectOption(t *testing.T) {
	s, ts := startServer(t, probeFactory("", nil), server.Options{})
	c := dial(t, ts.URL, client.Options{Room: "r"})
	expectText(t, c, "id:1")
	s.SwapFactory(probeFactory("v2 ", nil))
	err := waitClosed(t, c)
	if ce, ok := errors.AsType[*client.CloseError](err); !ok || ce.Code != stateroom.CloseServiceRestart {
		t.Fatalf("Err = %v, want 1012", err)
	}
}

func TestDialErrors(t *testing.T) {
	refusing := stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
		if id == "forbidden" {
			return nil, fmt.Errorf("no such game %q: %w", id, stateroom.ErrRoomRefused)
		}
		return probe{}, nil
	})
	_, ts := startServer(t, refusing, server.Options{ClientToken: "s3cret"})

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name, url string
		ctx       context.Context
		opts      client.Options
		want      string
		status    int
	}{
		{name: "bad scheme", url: "ftp://example.com/ws/x", want: "scheme must be ws, wss, http or https"},
		{name: "unparsable", url: "ws://[::1", want: "bad URL"},
		{name: "no host", url: "ws:///ws/x", want: "no host"},
		{name: "refused", url: "ws://" + closedAddr + "/ws/x", want: "connection refused"},
		{name: "cancelled", url: ts.URL + "/ws/x", ctx: cancelled, opts: client.Options{Auth: "s3cret"}, want: "context canceled"},
		{name: "no auth", url: ts.URL, opts: client.Options{Room: "x"}, want: "401 Unauthorized: this server needs a client token", status: 401},
		{name: "bad auth", url: ts.URL, opts: client.Options{Room: "x", Auth: "wrong"}, want: "401", status: 401},
		{name: "room refused", url: ts.URL, opts: client.Options{Room: "forbidden", Auth: "s3cret", Token: "t"}, want: `403 Forbidden: no such game "forbidden": stateroom: room refused`, status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
			}
			c, err := client.Dial(ctx, tc.url, tc.opts)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "token=") {
				t.Fatalf("error %q shows the token", err)
			}
			he, ok := errors.AsType[*client.HandshakeError](err)
			if (tc.status != 0) != ok || (ok && he.Status != tc.status) {
				t.Fatalf("error %#v: want status %d", err, tc.status)
			}
			if tc.ctx != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v is not context.Canceled", err)
			}
		})
	}

	// With the client token, the same server accepts.
	c := dial(t, ts.URL, client.Options{Room: "x", Auth: "s3cret"})
	expectText(t, c, "id:1")
	send(t, c, stateroom.Text("in"))
	expectText(t, c, "in")
}

// A reconnection refused for good (403) stops the Conn with that error.
func TestReconnectRefusedStops(t *testing.T) {
	s, ts := startServer(t, probeFactory("", nil), server.Options{})
	c := dial(t, ts.URL, client.Options{Room: "r", Reconnect: true})
	expectText(t, c, "id:1")
	s.SwapFactory(stateroom.FactoryFunc(func(string) (stateroom.Service, error) {
		return nil, stateroom.ErrRoomRefused
	}))
	err := waitClosed(t, c)
	if he, ok := errors.AsType[*client.HandshakeError](err); !ok || he.Status != 403 {
		t.Fatalf("Err = %v, want a 403 HandshakeError", err)
	}
}

// Close flushes what is queued, is idempotent, and after it nothing runs
// (goleak checks the goroutines in TestMain).
func TestClose(t *testing.T) {
	var connects atomic.Int32
	_, ts := startServer(t, probeFactory("", &connects), server.Options{})
	c := dial(t, ts.URL, client.Options{Room: "c", Reconnect: true})
	expectText(t, c, "id:1")
	// Unread messages do not keep Close waiting.
	for i := range 100 {
		send(t, c, stateroom.Text(fmt.Sprint(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.CloseContext(ctx); err != nil {
		t.Fatalf("CloseContext: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := c.Send(context.Background(), stateroom.Text("late")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if c.State() != client.StateClosed {
		t.Fatalf("state %v", c.State())
	}
	// An expired context cuts the connection at once and still waits.
	c2 := dial(t, ts.URL, client.Options{Room: "c"})
	expectText(t, c2, "id:2")
	expired, cancel2 := context.WithCancel(context.Background())
	cancel2()
	// (nil if the close handshake happened to finish first.)
	if err := c2.CloseContext(expired); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("CloseContext(expired): %v", err)
	}
	<-c2.Done()
	if n := connects.Load(); n != 2 {
		t.Fatalf("%d connects, want 2 (no reconnect after Close)", n)
	}
}

// A refused handshake's response header reaches the HandshakeError: a 429
// says when to try again.
func TestHandshakeErrorHeader(t *testing.T) {
	_, ts := startServer(t, probeFactory("", nil), server.Options{MaxRoomsCreatedPerIP: 1})
	c := dial(t, ts.URL, client.Options{Room: "first"})
	expectText(t, c, "id:1")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := client.Dial(ctx, ts.URL, client.Options{Room: "second"})
	he, ok := errors.AsType[*client.HandshakeError](err)
	if !ok || he.Status != http.StatusTooManyRequests {
		t.Fatalf("a second room: %v, want a 429 HandshakeError", err)
	}
	if he.Header.Get("Retry-After") == "" || !strings.Contains(he.Message, "MaxRoomsCreatedPerIP") {
		t.Fatalf("429 with header %v and message %q, want Retry-After and the option's name", he.Header, he.Message)
	}
}

// A Host header is sent as the request's Host (the server's AllowedHosts
// checks it) while the URL's address is the one dialled; NetDial opens
// the connection to that address.
func TestHostHeaderAndNetDial(t *testing.T) {
	_, ts := startServer(t, probeFactory("", nil), server.Options{AllowedHosts: []string{"app.example.test"}})
	port := ts.URL[strings.LastIndexByte(ts.URL, ':'):]
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := client.Dial(ctx, ts.URL, client.Options{Room: "h"})
	if he, ok := errors.AsType[*client.HandshakeError](err); !ok || he.Status != http.StatusMisdirectedRequest {
		t.Fatalf("dialled by address: %v, want 421 (a Host AllowedHosts does not list)", err)
	}
	c := dial(t, ts.URL, client.Options{Room: "h", Header: http.Header{"Host": {"app.example.test" + port}}})
	expectText(t, c, "id:1")

	var dialled []string
	var d net.Dialer
	c2 := dial(t, "ws://app.example.test"+port, client.Options{Room: "h", NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled = append(dialled, network+" "+addr)
		return d.DialContext(ctx, network, ts.Listener.Addr().String())
	}})
	expectText(t, c2, "id:2")
	if want := "tcp app.example.test" + port; len(dialled) != 1 || dialled[0] != want {
		t.Fatalf("NetDial called with %q, want once with %q", dialled, want)
	}
}

// Receive returns the next message, ctx's error when none comes in time,
// and Err once the Conn is closed for good.
func TestReceive(t *testing.T) {
	_, ts := startServer(t, probeFactory("", nil), server.Options{})
	c := dial(t, ts.URL, client.Options{Room: "r"})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if p, err := c.Receive(ctx); err != nil || p.String() != "id:1" {
		t.Fatalf("Receive = %q, %v; want id:1", p.Data, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if p, err := c.Receive(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with nothing sent = %q, %v; want the context's deadline", p.Data, err)
	}
	send(t, c, stateroom.Binary([]byte{1, 2}))
	if p, err := c.Receive(ctx); err != nil || !p.Binary || !bytes.Equal(p.Data, []byte{1, 2}) {
		t.Fatalf("Receive = %v (binary %v), %v; want the binary echo", p.Data, p.Binary, err)
	}
	send(t, c, stateroom.Text("close:4100"))
	_, err := c.Receive(ctx)
	if ce, ok := errors.AsType[*client.CloseError](err); !ok || ce.Code != 4100 || err != c.Err() {
		t.Fatalf("Receive after the server closed = %v, want Err(), a CloseError with 4100", err)
	}
}
