package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait in these tests; conditions are polled.
const waitTimeout = 10 * time.Second

// eventLog records what the probe services saw, across instances.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *eventLog) count(ev string) int {
	n := 0
	for _, e := range l.snapshot() {
		if e == ev {
			n++
		}
	}
	return n
}

// waitFor polls until the log holds ev.
func (l *eventLog) waitFor(t *testing.T, ev string) {
	t.Helper()
	eventually(t, func() bool { return l.count(ev) > 0 }, "event %q; log: %q", ev, l.snapshot())
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// probe is a test service: it logs every event as "<inst> <event>" and
// obeys commands sent as text messages (see Message).
type probe struct {
	log    *eventLog
	inst   int64
	label  string
	inCall atomic.Bool
	msgs   int
}

var instances atomic.Int64

func probeFactory(log *eventLog, label string) stateroom.Factory {
	return stateroom.New(func(string) *probe {
		return &probe{log: log, inst: instances.Add(1), label: label}
	})
}

func (p *probe) enter() {
	if !p.inCall.CompareAndSwap(false, true) {
		p.log.add("CONCURRENT CALL")
	}
}
func (p *probe) exit() { p.inCall.Store(false) }

func (p *probe) Init(r stateroom.Room, _ stateroom.InitEvent) {
	p.enter()
	defer p.exit()
	p.log.add("%d init %s", p.inst, r.ID())
}

func (p *probe) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	p.enter()
	defer p.exit()
	p.log.add("%d connect %d", p.inst, ev.Client)
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("hello %d room=%s inst=%d %s", ev.Client, r.ID(), p.inst, p.label)))
}

func (p *probe) Disconnect(r stateroom.Room, ev stateroom.DisconnectEvent) {
	p.enter()
	defer p.exit()
	p.log.add("%d disconnect %d", p.inst, ev.Client)
	r.Send(stateroom.Everyone, stateroom.Text(fmt.Sprintf("left %d", ev.Client)))
}

func (p *probe) Timer(r stateroom.Room, _ stateroom.TimerEvent) {
	p.enter()
	defer p.exit()
	p.log.add("%d timer", p.inst)
	r.Send(stateroom.Everyone, stateroom.Text("timer fired"))
}

func (p *probe) Close() error {
	p.log.add("%d close", p.inst)
	return nil
}

// Message obeys: echo:X (X back to the sender, binary stays binary), all:X,
// others:X, to:ID:X, timer:DURATION, timer0:X (zero timer, then send X),
// bcast:N (N bytes binary to everyone), flood:N (N small texts to the
// sender), kick:ID:CODE:REASON (Room.Close), count (number of messages so
// far), panic, fault:REASON, wrapfault:REASON.
func (p *probe) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	p.enter()
	defer p.exit()
	p.msgs++
	if ev.Payload.Binary {
		r.Send(stateroom.To(ev.Client), stateroom.Binary(ev.Payload.Data))
		return
	}
	cmd, arg, _ := strings.Cut(string(ev.Payload.Data), ":")
	switch cmd {
	case "echo":
		r.Send(stateroom.To(ev.Client), stateroom.Text(arg))
	case "all":
		r.Send(stateroom.Everyone, stateroom.Text(arg))
	case "others":
		r.Send(stateroom.EveryoneExcept(ev.Client), stateroom.Text(arg))
	case "to":
		id, text, _ := strings.Cut(arg, ":")
		n, _ := strconv.Atoi(id)
		r.Send(stateroom.To(stateroom.ClientID(n)), stateroom.Text(text))
	case "timer":
		d, _ := time.ParseDuration(arg)
		r.SetTimer(d)
	case "timer0":
		r.SetTimer(0)
		r.Send(stateroom.To(ev.Client), stateroom.Text(arg))
	case "bcast":
		n, _ := strconv.Atoi(arg)
		r.Send(stateroom.Everyone, stateroom.Binary(make([]byte, n)))
	case "flood": // N small messages to the sender, in this one event
		n, _ := strconv.Atoi(arg)
		for range n {
			r.Send(stateroom.To(ev.Client), stateroom.Text("f"))
		}
	case "seq": // seq:N:SIZE sends the sender N numbered messages of SIZE bytes, in this one event
		ns, sizes, _ := strings.Cut(arg, ":")
		n, _ := strconv.Atoi(ns)
		size, _ := strconv.Atoi(sizes)
		for i := range n {
			r.Send(stateroom.To(ev.Client), stateroom.Text(seqMessage(i, size)))
		}
	case "kick": // kick:ID:CODE:REASON closes client ID through Room.Close
		parts := strings.SplitN(arg, ":", 3)
		id, _ := strconv.Atoi(parts[0])
		code, _ := strconv.Atoi(parts[1])
		if err := r.Close(stateroom.ClientID(id), stateroom.CloseCode(code), parts[2]); err != nil {
			r.Send(stateroom.To(ev.Client), stateroom.Text("close error: "+err.Error()))
		}
	case "count":
		r.Send(stateroom.To(ev.Client), stateroom.Text(strconv.Itoa(p.msgs)))
	case "panic":
		p.log.add("%d panicking", p.inst)
		panic("boom")
	case "fault":
		p.log.add("%d panicking", p.inst)
		panic(&stateroom.Fault{Reason: arg, Err: errors.New("test fault")})
	case "wrapfault":
		p.log.add("%d panicking", p.inst)
		panic(fmt.Errorf("wrapped: %w", &stateroom.Fault{Reason: arg}))
	}
}

// seqMessage is message i of the probe's "seq" command: its number, padded
// with dots to size bytes.
func seqMessage(i, size int) string {
	m := strconv.Itoa(i) + ":"
	return m + strings.Repeat(".", max(size-len(m), 0))
}

// quietLogger discards logs, keeping test output readable.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// startServer runs a Server on an httptest server; both stop with the test.
func startServer(t *testing.T, f stateroom.Factory, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	return startServerOn(t, f, opts, httptest.NewServer)
}

// startServerOn is startServer with the httptest constructor to use
// (httptest.NewTLSServer for TLS).
func startServerOn(t *testing.T, f stateroom.Factory, opts Options, newTS func(http.Handler) *httptest.Server) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	s, err := New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTS(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return s, ts
}

func wsURL(ts *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + path
}

// dial connects a client (package client, without reconnection) to path;
// it is closed with the test.
func dial(t *testing.T, ts *httptest.Server, path string) *client.Conn {
	t.Helper()
	return dialURL(t, wsURL(ts, path), client.Options{})
}

// dialURL connects a client to url with opts; it is closed with the test.
func dialURL(t *testing.T, url string, opts client.Options) *client.Conn {
	t.Helper()
	c, err := tryDial(t, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err) // a refusal says its HTTP status and the server's reason
	}
	return c
}

// tryDial connects a client to url with opts and returns the error of a
// refused handshake (a *client.HandshakeError) for the test to check. A
// client that connects is closed with the test.
func tryDial(t *testing.T, url string, opts client.Options) (*client.Conn, error) {
	t.Helper()
	opts.HandshakeTimeout = waitTimeout
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// recv returns the next message of c, or why none came within
// waitTimeout: for goroutines other than the test's.
func recv(c *client.Conn) (stateroom.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p, err := c.Receive(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return p, fmt.Errorf("no message within %v", waitTimeout)
	}
	return p, err
}

// read returns the next message, failing the test on error or timeout.
func read(t *testing.T, c *client.Conn) (binary bool, data string) {
	t.Helper()
	p, err := recv(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return p.Binary, string(p.Data)
}

// expect reads the next message and checks it is text want.
func expect(t *testing.T, c *client.Conn, want string) {
	t.Helper()
	binary, got := read(t, c)
	if binary || got != want {
		t.Fatalf("got message %q (binary %v), want text %q", got, binary, want)
	}
}

// expectPrefix reads the next message and checks it starts with prefix.
func expectPrefix(t *testing.T, c *client.Conn, prefix string) string {
	t.Helper()
	_, got := read(t, c)
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("got message %q, want one starting with %q", got, prefix)
	}
	return got
}

// send sends text.
func send(t *testing.T, c *client.Conn, text string) {
	t.Helper()
	sendPayload(t, c, stateroom.Text(text))
}

// sendPayload sends p. The client queues it and writes it in order; an
// error writing it ends the connection, which the next read reports.
func sendPayload(t *testing.T, c *client.Conn, p stateroom.Payload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Send(ctx, p); err != nil {
		t.Fatalf("send %.40q: %v", p.Data, err)
	}
}

// expectClose reads until the server closes the connection and checks the
// close code and reason.
func expectClose(t *testing.T, c *client.Conn, code stateroom.CloseCode, reason string) {
	t.Helper()
	if err := checkClose(c, code, reason); err != nil {
		t.Fatal(err)
	}
}

// checkClose is expectClose for a goroutine other than the test's: it
// returns what is wrong instead of failing the test.
func checkClose(c *client.Conn, code stateroom.CloseCode, reason string) error {
	got, text, err := closeOf(c)
	if err != nil {
		return fmt.Errorf("%w, want close %d %q", err, code, reason)
	}
	if got != code || text != reason {
		return fmt.Errorf("got close %d %q, want %d %q", got, text, code, reason)
	}
	return nil
}

// closeOf reads c until the server closes it, skipping the messages sent
// before, and returns the close frame's code and reason.
func closeOf(c *client.Conn) (stateroom.CloseCode, string, error) {
	var last stateroom.Payload
	for {
		p, err := recv(c)
		if err == nil {
			last = p
			continue
		}
		ce, ok := errors.AsType[*client.CloseError](c.Err())
		if !ok || ce.Code == stateroom.CloseAbnormal {
			return 0, "", fmt.Errorf("got %v (after %.40q)", err, last.Data)
		}
		return ce.Code, ce.Reason, nil
	}
}

// dialTapped connects a client to path like dial and also returns its
// socket, a tappedConn, for what a test must do beneath the client: cut
// the connection without a close frame, write a frame a well-behaved
// client never sends, or watch the control frames the client handles by
// itself.
func dialTapped(t *testing.T, ts *httptest.Server, path string) (*client.Conn, *tappedConn) {
	t.Helper()
	var tc *tappedConn
	var d net.Dialer
	c := dialURL(t, wsURL(ts, path), client.Options{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc = &tappedConn{Conn: nc}
		return tc, nil
	}})
	return c, tc
}

// tappedConn is a client's socket (see dialTapped): it reports the opcodes
// of the frames the client reads and writes.
type tappedConn struct {
	net.Conn
	in, out frameScanner
}

func (c *tappedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.scan(b[:n])
	return n, err
}

func (c *tappedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.scan(b[:n])
	return n, err
}

// inject writes the client frame f (masked here) on the socket, between
// the client's own frames: each of those is one Write, which a TCP socket
// does not interleave with another.
func (c *tappedConn) inject(t *testing.T, f ws.Frame) {
	t.Helper()
	if _, err := c.Conn.Write(ws.MustCompileFrame(ws.MaskFrameWith(f, [4]byte{1, 2, 3, 4}))); err != nil {
		t.Fatalf("inject frame: %v", err)
	}
}

// frameScanner counts the frames of a byte stream by opcode, after the
// HTTP handshake that starts the stream.
type frameScanner struct {
	mu      sync.Mutex
	buf     []byte
	framing bool // the handshake is behind
	counts  [16]int
}

func (s *frameScanner) scan(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, b...)
	if !s.framing {
		i := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		s.buf, s.framing = s.buf[i+4:], true
	}
	for {
		r := bytes.NewReader(s.buf)
		h, err := ws.ReadHeader(r)
		if err != nil { // a header cut short: wait for the rest
			return
		}
		size := len(s.buf) - r.Len() + int(h.Length)
		if len(s.buf) < size {
			return
		}
		s.counts[h.OpCode&0xf]++
		s.buf = s.buf[size:]
	}
}

// count returns how many frames with op went by.
func (s *frameScanner) count(op ws.OpCode) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op&0xf]
}

// rawConn is a client on a bare socket, for what a well-behaved client
// (package client) never does: break the protocol, send frames it does
// not, or stay silent (read nothing, answer no ping and no close frame).
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, ts *httptest.Server, path string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, wsURL(ts, path))
	if err != nil {
		t.Fatalf("raw dial %s: %v", path, err)
	}
	t.Cleanup(func() { nc.Close() })
	if br == nil {
		br = bufio.NewReader(nc)
	}
	return &rawConn{Conn: nc, br: br}
}

// writeFrame writes f as is (mask it first for a valid client frame).
func (c *rawConn) writeFrame(t *testing.T, f ws.Frame) {
	t.Helper()
	if err := ws.WriteFrame(c, f); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

// sendText writes text as one masked frame.
func (c *rawConn) sendText(t *testing.T, text string) {
	t.Helper()
	c.writeFrame(t, masked(ws.NewTextFrame([]byte(text))))
}

// expectText reads the next data frame, skipping control frames, and
// checks it is text want.
func (c *rawConn) expectText(t *testing.T, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		f, err := readFrame(c.br)
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if f.Header.OpCode.IsControl() {
			continue
		}
		if f.Header.OpCode != ws.OpText || string(f.Payload) != want {
			t.Fatalf("got %v frame %q, want text %q", f.Header.OpCode, f.Payload, want)
		}
		return
	}
}

// readUntilClose reads frames until a close frame and returns its code and
// reason, and how many data frames came before it.
func (c *rawConn) readUntilClose(t *testing.T) (code stateroom.CloseCode, reason string, data int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		f, err := readFrame(c.br)
		if err != nil {
			t.Fatalf("read frame: %v (after %d data frames)", err, data)
		}
		switch f.Header.OpCode {
		case ws.OpClose:
			sc, r := ws.ParseCloseFrameData(f.Payload)
			return stateroom.CloseCode(sc), r, data
		case ws.OpText, ws.OpBinary:
			data++
		}
	}
}

// httpGet returns the status and body of a plain GET.
func httpGet(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	return httpDo(t, http.MethodGet, url, header)
}

// httpDo returns the status and body of a request with no body. A Host
// entry in header is sent as the request's Host.
func httpDo(t *testing.T, method, url string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h // the client sends req.Host, not a Host header
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readFrame reads one server frame: ws.ReadFrame without trusting a length
// over maxTestFrame.
func readFrame(r io.Reader) (ws.Frame, error) {
	const maxTestFrame = 1 << 20
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > maxTestFrame {
		return ws.Frame{}, fmt.Errorf("frame of %d bytes is over the test limit", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	return ws.Frame{Header: h, Payload: p}, nil
}

// dialWith connects a client to path with header (a Host entry is sent
// as the request's Host) and returns the handshake's error, a
// *client.HandshakeError when the server refused, for tests of refused
// handshakes. A client that connects is closed with the test.
func dialWith(t *testing.T, ts *httptest.Server, path string, header http.Header) (*client.Conn, error) {
	t.Helper()
	return tryDial(t, wsURL(ts, path), client.Options{Header: header})
}

// expectRefused dials path with header and checks the handshake fails with
// status and a body containing msg.
func expectRefused(t *testing.T, ts *httptest.Server, path string, header http.Header, status int, msg string) *client.HandshakeError {
	t.Helper()
	_, err := dialWith(t, ts, path, header)
	if err == nil {
		t.Fatalf("dial %s with %v: connected, want HTTP %d", path, header, status)
	}
	he, ok := errors.AsType[*client.HandshakeError](err)
	if !ok {
		t.Fatalf("dial %s: %v, want HTTP %d", path, err, status)
	}
	if he.Status != status || !strings.Contains(he.Message, msg) {
		t.Fatalf("dial %s with %v: HTTP %d %q, want %d with %q", path, header, he.Status, he.Message, status, msg)
	}
	return he
}
