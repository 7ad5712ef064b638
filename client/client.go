package client

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// Defaults of the [Options] fields left at zero.
const (
	DefaultMinDelay         = 250 * time.Millisecond
	DefaultMaxDelay         = 10 * time.Second
	DefaultSendQueue        = 256
	DefaultMaxMessageSize   = 64 << 20
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultCloseTimeout bounds [Conn.Close] and how long a closing
	// connection waits for the server's close frame.
	DefaultCloseTimeout = 5 * time.Second
)

// messageBuffer is the capacity of the channel Messages returns.
const messageBuffer = 64

// Options configures [Dial]. The zero value connects once, without
// reconnecting, to the URL as given.
type Options struct {
	// Room, when set, is the room to join: Dial's URL is then the server's
	// base URL (ws://host or ws://host/prefix) and "/ws/" plus the
	// percent-encoded room id is appended to its path. When empty, the
	// URL names the room itself (ws://host/ws/{room}, or /ws for the
	// server's default room).
	Room string

	// Token is the reconnection token (sent as ?token=T): connections with
	// the same token get the same client id for as long as the room
	// lives. When empty and Reconnect is set, Dial generates a random one
	// (see [Conn.Token]).
	Token string

	// Auth is the client token of a server that requires one
	// (server.Options.ClientToken), sent as "Authorization: Bearer Auth".
	Auth string

	// Header holds more headers for the handshake request (Origin,
	// cookies, ...). A Host entry is sent as the request's Host instead
	// of the URL's (as net/http sends Request.Host), for a server reached
	// by address that routes or checks by name; the URL's host is still
	// the one dialled.
	Header http.Header

	// NetDial, if set, opens the connection to the address ("host:port")
	// of the URL instead of a net.Dialer, for a proxy, a Unix socket or
	// a socket with options of its own. TLS, for wss:// URLs, runs over
	// the connection it returns.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Reconnect makes the Conn reconnect by itself after a connection
	// ends with a close code the table of [stateroom.CloseCode] says to
	// reconnect on, or drops without a close frame.
	Reconnect bool

	// MinDelay and MaxDelay bound the reconnection backoff: the n-th
	// attempt in a row waits a random duration between d/2 and d, where d
	// is MinDelay*2^n capped at MaxDelay. Zero means 250 ms and 10 s.
	MinDelay, MaxDelay time.Duration

	// SendQueue is how many messages Send may queue while the Conn is not
	// open (and, while it is, how many wait for the writer before Send
	// blocks). Zero means 256.
	SendQueue int

	// MaxMessageSize is the largest message the Conn accepts from the
	// server; a larger one closes the connection with 1009, for good.
	// Zero means 64 MiB.
	MaxMessageSize int64

	// HandshakeTimeout bounds each connection attempt (TCP, TLS and the
	// WebSocket handshake). Zero means 30 s.
	HandshakeTimeout time.Duration

	// TLSConfig is used for wss:// URLs; nil means the defaults.
	TLSConfig *tls.Config

	// OnStateChange, if set, is called with each new state, in order: on
	// Dial's goroutine for StateConnecting and the first StateOpen, then
	// on the Conn's own goroutine. It must return quickly and must not
	// call Close (which waits for that goroutine).
	OnStateChange func(State)
}

// State is where a [Conn] is in its life.
type State int32

// The states of a Conn.
const (
	// StateConnecting: Dial is making the first connection.
	StateConnecting State = iota
	// StateOpen: connected; Send writes at once.
	StateOpen
	// StateReconnecting: the connection ended and the Conn is waiting or
	// trying to reconnect; Send queues.
	StateReconnecting
	// StateClosed: closed for good (see [Conn.Err]).
	StateClosed
)

// String returns "connecting", "open", "reconnecting" or "closed".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateOpen:
		return "open"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ErrClosed is what [Conn.Err] returns, and what [Conn.Send] wraps, after
// [Conn.Close].
var ErrClosed = errors.New("stateroom client: connection closed")

// ErrQueueFull is returned by [Conn.Send] when the Conn is not open and
// Options.SendQueue messages already wait.
var ErrQueueFull = errors.New("stateroom client: send queue full while reconnecting (Options.SendQueue)")

// CloseError is why a Conn stopped when its connection was closed by the
// server with a code the client does not reconnect on (or any code,
// without Options.Reconnect), or dropped (Code is
// [stateroom.CloseAbnormal] and Err says how).
type CloseError struct {
	// Code is the close code; [stateroom.CloseAbnormal] when the
	// connection dropped without a close frame, 1005 when the close frame
	// had no code.
	Code stateroom.CloseCode
	// Reason is the close frame's reason.
	Reason string
	// Err is the read or write error of a dropped connection, or a
	// protocol error the client closed the connection for.
	Err error
}

func (e *CloseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stateroom client: connection closed with %d (%s)", uint16(e.Code), e.Code)
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *CloseError) Unwrap() error { return e.Err }

// HandshakeError is a WebSocket handshake the server answered with an HTTP
// error instead of 101 Switching Protocols.
type HandshakeError struct {
	// URL is the URL dialled, without its query (which holds the token).
	URL string
	// Status is the HTTP status code.
	Status int
	// Message is the start of the response body: the server's reason.
	Message string
	// Header is the response's header (Retry-After of a 429, say); nil
	// when the response could not be parsed.
	Header http.Header
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("stateroom client: %s refused the WebSocket handshake: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Temporary reports whether trying again later may succeed: 408, 429 and
// 5xx statuses. A reconnecting Conn stops on the others.
func (e *HandshakeError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Conn is a connection to one room, reconnecting by itself with
// Options.Reconnect. Its methods are safe for concurrent use.
type Conn struct {
	opts    Options
	url     string // the URL dialled, token included
	display string // the URL without its query, for errors
	dialer  ws.Dialer
	token   string

	queue chan stateroom.Payload
	msgs  chan stateroom.Payload
	state atomic.Int32

	ctx    context.Context // cancelled by Close: ends dials and backoffs
	cancel context.CancelFunc

	closeReq  chan struct{} // closed by Close
	closeOnce sync.Once
	done      chan struct{} // closed once every goroutine has ended

	mu      sync.Mutex
	cur     *link // the open connection, if any
	aborted bool  // Close's context ended: cut connections
	err     error // why the Conn is closed for good
}

// link is one WebSocket connection of a Conn.
type link struct {
	nc net.Conn
	br io.Reader
	// dead is closed once the reader has ended and nc is closed.
	dead chan struct{}

	wmu       sync.Mutex
	wbuf      bytes.Buffer
	closeSent bool // no frame may follow a close frame
}

// Dial connects to a room and returns an open Conn, or an error saying why
// it could not: a bad URL, a network error, a [*HandshakeError] (the
// server refused with an HTTP status and a message), or ctx's error. ctx
// bounds this first connection only. rawURL is ws://, wss://, http:// or
// https://: the room's URL (…/ws/{room}), or with Options.Room the
// server's base URL.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	full, display, err := roomURL(rawURL, opts.Room)
	if err != nil {
		return nil, err
	}
	opts.MinDelay = cmp.Or(opts.MinDelay, DefaultMinDelay)
	opts.MaxDelay = cmp.Or(opts.MaxDelay, DefaultMaxDelay)
	opts.MaxDelay = max(opts.MaxDelay, opts.MinDelay)
	opts.SendQueue = cmp.Or(opts.SendQueue, DefaultSendQueue)
	opts.MaxMessageSize = cmp.Or(opts.MaxMessageSize, DefaultMaxMessageSize)
	opts.HandshakeTimeout = cmp.Or(opts.HandshakeTimeout, DefaultHandshakeTimeout)
	if opts.MinDelay < 0 || opts.SendQueue < 0 || opts.MaxMessageSize < 0 || opts.HandshakeTimeout < 0 {
		return nil, errors.New("stateroom client: Options.MinDelay, MaxDelay, SendQueue, MaxMessageSize and HandshakeTimeout must not be negative")
	}
	token := opts.Token
	if token == "" && opts.Reconnect {
		token = newToken()
	}
	if token != "" {
		q := full.Query()
		q.Set("token", token)
		full.RawQuery = q.Encode()
	}
	h := opts.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if opts.Auth != "" {
		h.Set("Authorization", "Bearer "+opts.Auth)
	}
	host := h.Get("Host") // written as the request's Host line, not twice
	h.Del("Host")
	c := &Conn{
		opts:     opts,
		url:      full.String(),
		display:  display,
		token:    token,
		queue:    make(chan stateroom.Payload, opts.SendQueue),
		msgs:     make(chan stateroom.Payload, messageBuffer),
		closeReq: make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.dialer = ws.Dialer{
		Header:    ws.HandshakeHeaderHTTP(h),
		Host:      host,
		Timeout:   opts.HandshakeTimeout,
		TLSConfig: opts.TLSConfig,
		NetDial:   opts.NetDial,
	}
	c.setState(StateConnecting)
	l, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.cur = l
	c.setState(StateOpen)
	go c.run(l)
	return c, nil
}

// roomURL parses rawURL and appends /ws/{room} when room is set. It
// returns the URL and its form without query for error messages.
func roomURL(rawURL, room string) (*url.URL, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("stateroom client: bad URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, "", fmt.Errorf("stateroom client: bad URL %q: the scheme must be ws, wss, http or https", rawURL)
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("stateroom client: bad URL %q: no host", rawURL)
	}
	u.Fragment, u.RawFragment = "", ""
	if room != "" {
		if !utf8.ValidString(room) {
			return nil, "", fmt.Errorf("stateroom client: room id %q is not valid UTF-8", room)
		}
		raw := strings.TrimSuffix(u.EscapedPath(), "/") + "/ws/" + url.PathEscape(room)
		p, err := url.PathUnescape(raw)
		if err != nil {
			return nil, "", fmt.Errorf("stateroom client: bad URL %q: %w", rawURL, err)
		}
		u.Path, u.RawPath = p, raw
	}
	if u.Path == "" {
		u.Path = "/"
	}
	d := *u
	d.RawQuery, d.ForceQuery = "", false
	return u, d.String(), nil
}

// newToken returns a random reconnection token.
func newToken() string {
	b := make([]byte, 18)
	crand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// dial makes one connection attempt.
func (c *Conn) dial(ctx context.Context) (*link, error) {
	var refused *HandshakeError
	d := c.dialer
	d.OnStatusError = func(status int, _ []byte, resp io.Reader) {
		refused = &HandshakeError{URL: c.display, Status: status}
		refused.Header, refused.Message = readRefusal(resp)
	}
	nc, br, _, err := d.Dial(ctx, c.url)
	if err != nil {
		if refused != nil {
			return nil, refused
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("stateroom client: dial %s: %w (%v)", c.display, ctxErr, err)
		}
		return nil, fmt.Errorf("stateroom client: dial %s: %w", c.display, err)
	}
	// Reads are buffered: a frame unbuffered costs two system calls (its
	// header, then its payload), and a server sends many small frames.
	l := &link{nc: nc, br: bufio.NewReader(nc), dead: make(chan struct{})}
	if br != nil {
		l.br = io.MultiReader(br, l.br)
	}
	return l, nil
}

// readRefusal reads a refused handshake's response: its header and the
// start of its body.
func readRefusal(r io.Reader) (http.Header, string) {
	resp, err := http.ReadResponse(bufio.NewReader(r), nil)
	if err != nil {
		return nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.Header, strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// Token returns the reconnection token the Conn sends ("" for none).
func (c *Conn) Token() string { return c.token }

// State returns the Conn's current state.
func (c *Conn) State() State { return State(c.state.Load()) }

func (c *Conn) setState(s State) {
	if State(c.state.Swap(int32(s))) == s && s != StateConnecting {
		return
	}
	if c.opts.OnStateChange != nil {
		c.opts.OnStateChange(s)
	}
}

// Messages returns the channel of the messages the server sends, in order,
// across reconnections. It is closed when the Conn is closed for good;
// [Conn.Err] then says why. A Conn whose messages are not read stops
// reading its socket once the channel's buffer is full (the server may
// then close it as a slow consumer).
func (c *Conn) Messages() <-chan stateroom.Payload { return c.msgs }

// Receive returns the next message the server sends, waiting until one
// comes, the Conn is closed for good (it then returns [Conn.Err], never
// nil), or ctx is done (it returns ctx's error). It takes from the
// channel [Conn.Messages] returns: a message goes to one or the other.
func (c *Conn) Receive(ctx context.Context) (stateroom.Payload, error) {
	select {
	case p, ok := <-c.msgs:
		if !ok {
			return stateroom.Payload{}, c.Err()
		}
		return p, nil
	case <-ctx.Done():
		return stateroom.Payload{}, ctx.Err()
	}
}

// Done returns a channel closed when the Conn is closed for good and its
// goroutines have ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the Conn lives, then why it is closed: [ErrClosed]
// after Close, a [*CloseError] for a close code it does not reconnect on
// (or a dropped connection without Options.Reconnect), or the error of a
// reconnection refused for good (a [*HandshakeError]).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send queues p to be written to the server, in order with the other
// messages sent, and returns. p's bytes are copied, so the caller may reuse
// them. While the Conn is open, Send waits (until ctx is done) for room in
// the queue; while it is reconnecting, it queues at once or returns
// [ErrQueueFull]. The messages queued while reconnecting are written once
// the Conn is open again; those queued when it closes for good are
// dropped. A text payload must be valid UTF-8 (the server closes a client
// that sends otherwise).
func (c *Conn) Send(ctx context.Context, p stateroom.Payload) error {
	if !p.Binary && !utf8.Valid(p.Data) {
		return errors.New("stateroom client: a text message must be valid UTF-8; send it as binary")
	}
	if err := c.closedErr(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.Data = bytes.Clone(p.Data)
	if p.Data == nil {
		p.Data = []byte{}
	}
	select {
	case c.queue <- p:
		return nil
	default:
	}
	if c.State() != StateOpen {
		return ErrQueueFull
	}
	select {
	case c.queue <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closeReq:
		return ErrClosed
	case <-c.done:
		return c.closedErr()
	}
}

// closedErr returns a non-nil error once the Conn is closed or closing.
func (c *Conn) closedErr() error {
	select {
	case <-c.closeReq:
		return ErrClosed
	case <-c.done:
		if err := c.Err(); err != nil {
			return fmt.Errorf("stateroom client: connection closed: %w", err)
		}
		return ErrClosed
	default:
		return nil
	}
}

// Close closes the Conn with 1000 (normal closure) and waits, at most
// DefaultCloseTimeout, for the server's answer and for the Conn's
// goroutines to end. See [Conn.CloseContext].
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	defer cancel()
	return c.CloseContext(ctx)
}

// CloseContext closes the Conn: the messages already queued are written,
// then a close frame with 1000, and it waits for the server's close frame;
// a reconnection in progress is abandoned. It returns once every goroutine
// of the Conn has ended. If ctx ends first the connection is cut at once
// and CloseContext returns ctx's error (still after the goroutines ended).
// Calling it again, or after the Conn stopped by itself, returns nil.
func (c *Conn) CloseContext(ctx context.Context) error {
	c.closeOnce.Do(func() {
		close(c.closeReq)
		c.cancel()
	})
	if ctx.Err() == nil {
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
		}
	}
	select {
	case <-c.done:
		return nil
	default:
	}
	c.mu.Lock()
	c.aborted = true
	if c.cur != nil {
		c.cur.nc.Close()
	}
	c.mu.Unlock()
	<-c.done
	return ctx.Err()
}

// run is the Conn's goroutine: it serves each connection and reconnects.
func (c *Conn) run(l *link) {
	var retry []stateroom.Payload // written first on the next connection
	attempt := 0
	for {
		opened := time.Now()
		out, unsent := c.serve(l, retry)
		retry = unsent
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		if out == nil { // closed by Close
			c.finish(ErrClosed)
			return
		}
		if !c.opts.Reconnect || !out.Code.Reconnect() {
			c.finish(out)
			return
		}
		if time.Since(opened) >= c.opts.MaxDelay {
			attempt = 0
		}
		c.setState(StateReconnecting)
		for {
			if !c.sleep(c.backoff(attempt)) {
				c.finish(ErrClosed)
				return
			}
			attempt = min(attempt+1, 30)
			nl, err := c.dial(c.ctx)
			if err == nil {
				l = nl
				break
			}
			if c.ctx.Err() != nil {
				c.finish(ErrClosed)
				return
			}
			if he, ok := errors.AsType[*HandshakeError](err); ok && !he.Temporary() {
				c.finish(err)
				return
			}
		}
		c.mu.Lock()
		c.cur = l
		if c.aborted {
			l.nc.Close()
		}
		c.mu.Unlock()
		c.setState(StateOpen)
	}
}

// finish records why the Conn ended and closes it for good.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	c.cancel()
	c.setState(StateClosed)
	close(c.msgs)
	close(c.done)
}

// backoff returns the wait before reconnection attempt n (from 0): a random
// duration in [d/2, d], d = MinDelay*2^n capped at MaxDelay.
func (c *Conn) backoff(n int) time.Duration {
	d := c.opts.MaxDelay
	if n < 30 {
		d = min(c.opts.MinDelay<<n, c.opts.MaxDelay)
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d; it returns false if the Conn was closed meanwhile.
func (c *Conn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closeReq:
		return false
	}
}

// serve runs connection l until it ends: the writer on a goroutine of its
// own, the reader on this one. It returns why the connection ended (nil
// when Close ended it) and the messages taken from the queue but not
// written.
func (c *Conn) serve(l *link, retry []stateroom.Payload) (*CloseError, []stateroom.Payload) {
	var unsent []stateroom.Payload
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		unsent = c.writeLoop(l, retry)
	}()
	out, closing := c.readLoop(l)
	l.nc.Close()
	close(l.dead)
	<-wrote
	if closing {
		return nil, nil
	}
	return out, unsent
}

// writeLoop writes retry, then what Send queues, to l, until l is dead or
// the Conn is closing (then it writes what is queued and a close frame).
// It returns the messages it could not write.
func (c *Conn) writeLoop(l *link, retry []stateroom.Payload) []stateroom.Payload {
	for i, p := range retry {
		if err := l.writeData(p); err != nil {
			l.nc.Close()
			return retry[i:]
		}
	}
	for {
		select {
		case p := <-c.queue:
			if err := l.writeData(p); err != nil {
				l.nc.Close()
				return []stateroom.Payload{p}
			}
		case <-c.closeReq:
			for {
				select {
				case p := <-c.queue:
					if l.writeData(p) != nil {
						l.nc.Close()
						return nil
					}
					continue
				default:
				}
				break
			}
			if l.writeClose(stateroom.CloseNormal, "") != nil {
				l.nc.Close()
				return nil
			}
			l.nc.SetReadDeadline(time.Now().Add(DefaultCloseTimeout))
			return nil
		case <-l.dead:
			return nil
		}
	}
}

// readLoop reads l's frames, delivers its messages and answers its control
// frames until the connection ends. It returns how it ended, and whether
// the Conn was closing (Close was called) by then.
func (c *Conn) readLoop(l *link) (*CloseError, bool) {
	closing := func() bool {
		select {
		case <-c.closeReq:
			return true
		default:
			return false
		}
	}
	fail := func(code stateroom.CloseCode, err error) (*CloseError, bool) {
		l.writeClose(code, err.Error())
		return &CloseError{Code: code, Err: err}, closing()
	}
	var (
		msg    []byte
		msgOp  ws.OpCode
		inMsg  bool
		header = make([]byte, 0, ws.MaxHeaderSize)
	)
	for {
		h, err := ws.ReadHeaderBuffer(l.br, header[:0:ws.MaxHeaderSize])
		if err != nil {
			return &CloseError{Code: stateroom.CloseAbnormal, Err: err}, closing()
		}
		switch {
		case h.Masked:
			return fail(stateroom.CloseProtocolError, errors.New("the server sent a masked frame"))
		case h.Rsv != 0:
			return fail(stateroom.CloseProtocolError, errors.New("the server sent a frame with reserved bits set"))
		case h.OpCode.IsReserved():
			return fail(stateroom.CloseProtocolError, fmt.Errorf("the server sent a frame with reserved opcode %d", h.OpCode))
		case h.OpCode.IsControl() && (h.Length > ws.MaxControlFramePayloadSize || !h.Fin):
			return fail(stateroom.CloseProtocolError, errors.New("the server sent a bad control frame"))
		case h.Length > c.opts.MaxMessageSize || int64(len(msg))+h.Length > c.opts.MaxMessageSize:
			return fail(stateroom.CloseMessageTooBig, fmt.Errorf("the server sent a message over %d bytes (Options.MaxMessageSize)", c.opts.MaxMessageSize))
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(l.br, payload); err != nil {
			return &CloseError{Code: stateroom.CloseAbnormal, Err: err}, closing()
		}
		switch h.OpCode {
		case ws.OpPing:
			l.writeFrame(ws.OpPong, payload)
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code, reason := stateroom.CloseCode(1005), ""
			if len(payload) >= 2 {
				sc, r := ws.ParseCloseFrameData(payload)
				code, reason = stateroom.CloseCode(sc), r
			} else if len(payload) == 1 {
				return fail(stateroom.CloseProtocolError, errors.New("the server sent a close frame of one byte"))
			}
			if code == 1005 {
				l.writeFrame(ws.OpClose, nil)
			} else {
				l.writeClose(code, "")
			}
			return &CloseError{Code: code, Reason: reason}, closing()
		case ws.OpContinuation:
			if !inMsg {
				return fail(stateroom.CloseProtocolError, errors.New("the server sent a continuation frame outside a message"))
			}
			msg = append(msg, payload...)
		default: // text or binary
			if inMsg {
				return fail(stateroom.CloseProtocolError, errors.New("the server started a message inside another"))
			}
			inMsg, msg, msgOp = true, payload, h.OpCode
		}
		if !h.Fin {
			continue
		}
		p := stateroom.Payload{Data: msg, Binary: msgOp == ws.OpBinary}
		inMsg, msg = false, nil
		if !p.Binary && !utf8.Valid(p.Data) {
			return fail(stateroom.CloseInvalidPayload, errors.New("the server sent a text message that is not valid UTF-8"))
		}
		select {
		case c.msgs <- p:
		case <-c.closeReq: // nobody waits for messages any more
		}
	}
}

// writeData writes a text or binary frame.
func (l *link) writeData(p stateroom.Payload) error {
	op := ws.OpText
	if p.Binary {
		op = ws.OpBinary
	}
	return l.writeFrame(op, p.Data)
}

// writeClose writes a close frame with code and reason.
func (l *link) writeClose(code stateroom.CloseCode, reason string) error {
	return l.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), stateroom.TruncateReason(reason)))
}

var errCloseSent = errors.New("stateroom client: close frame already sent")

// writeFrame writes one masked frame; nothing is written after a close
// frame.
func (l *link) writeFrame(op ws.OpCode, payload []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closeSent {
		return errCloseSent
	}
	if op == ws.OpClose {
		l.closeSent = true
	}
	f := ws.MaskFrame(ws.NewFrame(op, true, payload))
	l.wbuf.Reset()
	if err := ws.WriteFrame(&l.wbuf, f); err != nil {
		return err
	}
	_, err := l.nc.Write(l.wbuf.Bytes())
	if l.wbuf.Cap() > 64<<10 {
		l.wbuf = bytes.Buffer{}
	}
	return err
}
