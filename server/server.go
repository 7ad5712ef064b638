package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stateroom-go/stateroom"
	stateroomjs "github.com/stateroom-go/stateroom/client/js"
	"github.com/stateroom-go/stateroom/internal/rooms"
	"github.com/stateroom-go/stateroom/internal/routines"
)

// Server serves the rooms of one service over WebSocket. It is an
// http.Handler; see the package documentation for its routes.
type Server struct {
	opts     Options
	log      *slog.Logger
	fact     atomic.Pointer[stateroom.Factory]
	place    rooms.Placement // where clients join rooms: today always reg
	reg      *rooms.Registry // the rooms of this process
	upgrader ws.HTTPUpgrader
	files    http.Handler // /status, /metrics and the static directories
	metrics  *metrics
	conns    connTable

	clientToken, adminToken *[sha256.Size]byte // digests of the tokens; nil when unset

	// owner counts every goroutine the server starts, every live
	// WebSocket handler and connection, and every room; closing it is the
	// server's one shutdown state.
	owner *routines.Owner

	quietBeforePark atomic.Int64 // a time.Duration (park.go); tests shrink it
	pollOnce        sync.Once
	poll            *poller // watches idle connections; nil until one parks, or when there can be none
}

// RoomInfo describes a running room, as reported by [Server.Rooms].
type RoomInfo struct {
	// ID is the room id.
	ID string
	// Clients is the number of clients connected now.
	Clients int
	// Created is when the room was created.
	Created time.Time
	// LastActivity is when the room last handled an event.
	LastActivity time.Time
	// MemoryBytes is the memory the room's service reports through an
	// optional MemoryBytes() int64 method (see [stateroom.MemoryReporter]), or -1
	// when it has none or the room was busy at that instant.
	MemoryBytes int64
}

// New returns a server whose rooms run services built by f. It fills the
// defaults of opts into its own copy and returns an error wrapping
// [ErrInvalidOptions] that names the field it cannot use.
func New(f stateroom.Factory, opts Options) (*Server, error) {
	if f == nil {
		return nil, errors.New("server: New needs a stateroom.Factory, got nil; wrap your constructor with stateroom.New")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var extra []prometheus.Collector
	if o.Cluster != nil {
		extra = o.Cluster.Collectors()
	}
	m, err := newMetrics(o.Metrics, extra...)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:        o,
		log:         o.Logger,
		metrics:     m,
		conns:       newConnTable(o.MaxConnections, o.MaxConnectionsPerIP, o.MaxRoomsCreatedPerIP),
		clientToken: tokenDigest(o.ClientToken),
		adminToken:  tokenDigest(o.AdminToken),
		owner:       routines.New(),
	}
	s.fact.Store(&f)
	s.quietBeforePark.Store(int64(quietBeforePark))
	s.reg = rooms.New(rooms.Config{
		Factory:           s.factory,
		Encode:            encodePayload,
		GracePeriod:       o.RoomGracePeriod, // its special values are rooms'
		MaxRooms:          o.MaxRooms,
		MaxClientsPerRoom: o.MaxClientsPerRoom,
		Logger:            o.Logger,
		Owner:             s.owner,
		Metrics:           m.roomMetrics(),

		Store:              roomStore(o),
		CheckpointInterval: o.CheckpointInterval,
		HibernateAfter:     max(o.HibernateAfter, 0), // NeverHibernate: 0, off
		InstanceDropped:    s.noteDroppedInstance,
		NoDormancy:         o.Cluster != nil,
	})
	s.place = s.reg
	if o.Cluster != nil {
		if s.place, err = o.Cluster.Bind(s.reg, s.reg.CloseAll); err != nil {
			return nil, err
		}
	}
	if o.Store != nil && o.Cluster == nil { // in a cluster, rooms wake through their owner (see cluster)
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		n, err := s.reg.WakeTimers(ctx)
		cancel()
		if err != nil {
			s.log.Error("rooms with pending timers were not started", "err", err)
		} else if n > 0 {
			s.log.Info("saved rooms whose timers are pending start at their deadlines", "rooms", n)
		}
	}
	s.upgrader = ws.HTTPUpgrader{Timeout: o.HandshakeTimeout}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", s.serveStatus)
	if !o.DisableMetrics && m.gatherer != nil {
		mux.Handle("GET "+o.MetricsPath, promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		}))
	}
	if o.AdminToken != "" {
		mux.Handle("/admin/", http.HandlerFunc(s.serveAdmin))
	}
	if o.ClientDir != "" {
		mux.Handle("/client/", http.StripPrefix("/client", staticHandler(dirRoot(o.ClientDir))))
	}
	switch {
	case o.StaticDir != "":
		mux.Handle("/", staticHandler(dirRoot(o.StaticDir)))
	case o.StaticFS != nil:
		mux.Handle("/", staticHandler(o.StaticFS))
	}
	s.files = mux
	return s, nil
}

// browserClient and browserStyle serve the browser module and the pages'
// stylesheet (client/js), the same bytes for every server.
var (
	browserClient = stateroomjs.Handler()
	browserStyle  = stateroomjs.StylesheetHandler()
)

func (s *Server) factory() stateroom.Factory { return *s.fact.Load() }

// ServeHTTP routes a request: GET /ws/{room} joins the room (the id is
// percent-decoded: /ws/a%2Fb is room "a/b"), GET /ws joins
// Options.DefaultRoom, GET /status answers "ok", GET /metrics (or
// Options.MetricsPath) serves the Prometheus metrics, /admin/ is the admin
// API when Options.AdminToken is set, /client/ and / serve
// Options.ClientDir and Options.StaticDir when set. With
// Options.AllowedHosts, a request for another Host gets 421 Misdirected
// Request on every route but /status. Paths are taken relative to where
// the server is mounted, so http.StripPrefix works.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if !hostAllowed(r.Host, s.opts.AllowedHosts) && p != "/status" {
		msg := fmt.Sprintf("this server does not serve host %q: add it to %s", r.Host, s.opts.name("AllowedHosts"))
		if p == "/ws" || strings.HasPrefix(p, "/ws/") {
			s.refuse(w, "", clientAddr(r, s.opts.TrustForwardedFor), "host", http.StatusMisdirectedRequest, msg)
		} else {
			http.Error(w, msg, http.StatusMisdirectedRequest)
		}
		return
	}
	switch {
	case p == "/ws":
		s.serveWS(w, r, s.opts.DefaultRoom)
	case strings.HasPrefix(p, "/ws/"):
		id, err := parseRoomID(p[len("/ws/"):], s.opts.MaxRoomIDLength, s.opts.name("MaxRoomIDLength"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.serveWS(w, r, id)
	case p == "/stateroom.js":
		browserClient.ServeHTTP(w, r)
	case p == "/stateroom.css":
		browserStyle.ServeHTTP(w, r)
	default:
		s.files.ServeHTTP(w, r)
	}
}

// parseRoomID decodes the room id of a /ws/{room} path from its escaped
// form: percent-decoded (/ws/a%2Fb is room "a/b"), non-empty, valid UTF-8
// (it travels as text: in logs, the admin API's JSON, a guest's string) and
// at most maxLen bytes. Errors say what to send instead.
func parseRoomID(escaped string, maxLen int, limitName string) (string, error) {
	id, err := url.PathUnescape(escaped)
	switch {
	case err != nil:
		return "", fmt.Errorf("bad room id %q: %v; percent-encode the room id", escaped, err)
	case id == "":
		return "", errors.New("empty room id: connect to /ws/{room}, or to /ws for the default room")
	case !utf8.ValidString(id):
		return "", fmt.Errorf("room id %q is not valid UTF-8 once percent-decoded; room ids are text", escaped)
	case len(id) > maxLen:
		return "", fmt.Errorf("room id is %d bytes long; the limit is %d (%s)", len(id), maxLen, limitName)
	}
	return id, nil
}

// serveWS joins room id, upgrades the request, delivers Connect on this
// goroutine and returns, leaving the connection to its reader goroutine.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "this is a WebSocket endpoint: open it with GET and an \"Upgrade: websocket\" header", http.StatusMethodNotAllowed)
		return
	}
	if !isUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "this is a WebSocket endpoint: connect with a WebSocket client (in a browser: new WebSocket(\"ws://host/ws/ROOM\"))", http.StatusUpgradeRequired)
		return
	}
	addr := clientAddr(r, s.opts.TrustForwardedFor)
	if !originAllowed(r, s.opts.AllowedOrigins, s.opts.TrustForwardedFor, len(s.opts.AllowedHosts) > 0) {
		s.refuse(w, id, addr, "origin", http.StatusForbidden, fmt.Sprintf("origin %q may not open a WebSocket on this server (host %q): add it to %s", r.Header.Get("Origin"), r.Host, s.opts.name("AllowedOrigins")))
		return
	}
	identity, err := s.authenticate(r, id)
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, ErrForbidden) {
			status = http.StatusForbidden
		}
		s.refuse(w, id, addr, "auth", status, err.Error())
		return
	}
	if err := checkHandshake(r); err != nil {
		// Checked before the room is joined, so a request that cannot
		// become a WebSocket never creates a room (nor a guest instance).
		status := http.StatusBadRequest
		if errors.Is(err, errBadVersion) {
			w.Header().Set("Sec-WebSocket-Version", "13") // RFC 6455, section 4.4
			status = http.StatusUpgradeRequired
		}
		s.refuse(w, id, addr, "bad_handshake", status, err.Error())
		return
	}
	// The handler, then the connection, is counted by the owner until the
	// connection ends, so Shutdown waits for it; refused once it began.
	if !s.owner.Hold() {
		s.refuse(w, id, addr, "shutdown", http.StatusServiceUnavailable, msgShuttingDown)
		return
	}
	handedOver := false // to the connection, which releases both when it ends
	defer func() {
		if !handedOver {
			s.owner.Release()
		}
	}()
	switch s.conns.acquire(addr) {
	case tooManyConnections:
		s.refuse(w, id, addr, "max_connections", http.StatusServiceUnavailable, fmt.Sprintf("the server has %d connections, its limit (%s); try again later", s.opts.MaxConnections, s.opts.name("MaxConnections")))
		return
	case tooManyFromAddr:
		s.refuse(w, id, addr, "max_connections_per_ip", http.StatusTooManyRequests, fmt.Sprintf("%d connections from %s already, the limit (%s); close some or try again later", s.opts.MaxConnectionsPerIP, addr, s.opts.name("MaxConnectionsPerIP")))
		return
	}
	defer func() {
		if !handedOver {
			s.conns.release(addr)
		}
	}()

	h, err := s.place.Join(rooms.JoinRequest{Room: id, Token: r.URL.Query().Get("token"), Identity: identity, Creating: s.conns.createRoom(addr)})
	var tooMany errTooManyRoomsCreated
	switch {
	case errors.As(err, &tooMany):
		secs := int((tooMany.retry + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.refuse(w, id, addr, "max_rooms_created_per_ip", http.StatusTooManyRequests, fmt.Sprintf("%s created %d rooms in the last minute, the limit (%s); join a running room, or create this one in %d s", addr, s.opts.MaxRoomsCreatedPerIP, s.opts.name("MaxRoomsCreatedPerIP"), secs))
		return
	case errors.Is(err, rooms.ErrShuttingDown):
		s.refuse(w, id, addr, "shutdown", http.StatusServiceUnavailable, msgShuttingDown)
		return
	case errors.Is(err, rooms.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		s.refuse(w, id, addr, "unavailable", http.StatusServiceUnavailable, err.Error())
		return
	case errors.Is(err, rooms.ErrTooManyRooms):
		s.refuse(w, id, addr, "max_rooms", http.StatusServiceUnavailable, fmt.Sprintf("the server runs %d rooms, its limit (%s); join a running room or try again later", s.opts.MaxRooms, s.opts.name("MaxRooms")))
		return
	case errors.Is(err, rooms.ErrRoomFull):
		s.metrics.refused.WithLabelValues("room_full").Inc()
		s.upgradeAndClose(w, r, id, addr, stateroom.CloseTryAgainLater, "room is full")
		return
	case errors.Is(err, stateroom.ErrRoomRefused):
		s.refuse(w, id, addr, "room_refused", http.StatusForbidden, err.Error())
		return
	case err != nil:
		s.refuse(w, id, addr, "service_error", http.StatusInternalServerError, err.Error())
		return
	}
	nc, rw, _, err := s.upgrader.Upgrade(r, w)
	if err != nil {
		// The upgrader has answered the client with the reason.
		if s.debugOn() {
			h.Logger().Debug("WebSocket upgrade failed", "remote", addr, "err", err)
		}
		if nc != nil {
			nc.Close()
		}
		h.Release()
		return
	}
	// The connection reads nc itself from here on; the bytes the client
	// sent right after its handshake may already sit in the HTTP server's
	// buffer. Keeping neither that buffer nor the request lets the HTTP
	// server's per-connection state go as this handler returns.
	var pending []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		pending = bytes.Clone(b)
	}
	c := newConn(s, h, nc, pending, addr)
	handedOver = true
	c.start()
}

const msgShuttingDown = "the server is shutting down; try again later"

// retryAfter is the Retry-After, in seconds, of a refusal for being at a
// limit: long enough not to hammer a busy server, short enough for a
// person waiting.
const retryAfter = "5"

// debugOn reports whether the server logs at Debug level, so that the
// lines it would drop cost nothing to build.
func (s *Server) debugOn() bool { return s.log.Enabled(context.Background(), slog.LevelDebug) }

// refuse answers a WebSocket request for room id from addr with an HTTP
// error before the upgrade and counts it under reason.
func (s *Server) refuse(w http.ResponseWriter, id, addr, reason string, status int, msg string) {
	s.metrics.refused.WithLabelValues(reason).Inc()
	s.log.Info("WebSocket request refused", "room", id, "remote", addr, "reason", reason, "status", status, "msg", msg)
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter) // unless the caller knows better
	}
	http.Error(w, msg, status)
}

// upgradeAndClose completes the handshake only to close the WebSocket at
// once with code and reason: a browser never sees the HTTP status of a
// refused handshake, but it does see a close frame's code and reason.
func (s *Server) upgradeAndClose(w http.ResponseWriter, r *http.Request, id, addr string, code stateroom.CloseCode, reason string) {
	s.log.Info("WebSocket closed on arrival", "room", id, "remote", addr, "code", code, "reason", reason)
	nc, _, _, err := s.upgrader.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(s.opts.WriteTimeout))
	if _, err := nc.Write(closeFrame(code, reason)); err != nil {
		return
	}
	s.metrics.closeSent(code)
	// Wait (bounded by the deadline) for the client's close frame or EOF,
	// so closing the socket does not reset the connection before the
	// client has read ours.
	io.Copy(io.Discard, io.LimitReader(nc, 1<<10))
}

// isUpgrade reports whether r asks for a WebSocket upgrade; the upgrader
// checks the rest of the handshake.
func isUpgrade(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// Shutdown stops the server gracefully: new WebSocket connections get 503,
// every room is ended (rooms in parallel, so a stuck one delays no other):
// its clients are closed with stateroom.CloseGoingAway after the messages
// queued for them, their Disconnects delivered, timers stopped and
// services closed; then Shutdown waits for every goroutine the server
// started. If ctx ends first, Shutdown returns ctx.Err() at once, whatever
// the rooms are doing: a client whose room could not be reached (its
// service is stuck in a callback) is sent CloseGoingAway directly, and a
// connection already closing is cut. Calling it again waits the same way.
// It does not close listeners: stop the http.Server too (Serve does both).
func (s *Server) Shutdown(ctx context.Context) error {
	s.owner.Close(func() {
		s.reg.Shutdown(stateroom.CloseGoingAway, "server shutting down")
	}, s.stopPoller)
	select {
	case <-s.owner.Done():
		return nil
	case <-ctx.Done():
		s.conns.each(func(c *conn) {
			if !c.Close(stateroom.CloseGoingAway, "server shutting down", false) {
				c.abort()
			}
		})
		return ctx.Err()
	}
}

// SwapFactory makes new rooms use f and closes every running room: its
// clients get stateroom.CloseServiceRestart and reconnect to a fresh
// instance. A nil f is logged and ignored.
func (s *Server) SwapFactory(f stateroom.Factory) {
	if f == nil {
		s.log.Error("SwapFactory called with a nil factory; keeping the current one")
		return
	}
	s.fact.Store(&f)
	n := s.reg.CloseAll(stateroom.CloseServiceRestart, "service restarted")
	s.log.Info("service factory swapped", "rooms_closed", n)
}

// CloseRoom ends room id now: its clients are closed with code and reason,
// their Disconnects delivered, and its service closed. It reports false if
// no such room is running. Code 0 means stateroom.CloseRoomClosed; a code a
// server may not send (see [stateroom.CloseCode.Sendable]) is replaced by
// stateroom.CloseRoomClosed and logged. The reason is cut to 123 bytes.
func (s *Server) CloseRoom(id string, code stateroom.CloseCode, reason string) bool {
	if code == 0 {
		code = stateroom.CloseRoomClosed
	} else if !code.Sendable() {
		s.log.Warn("CloseRoom: a server cannot send this close code; using CloseRoomClosed", "room", id, "code", int(code))
		code = stateroom.CloseRoomClosed
	}
	return s.reg.Close(id, code, reason)
}

// Rooms returns a snapshot of the running rooms, sorted by id. It never
// waits for a busy room: the memory of a room handling an event at that
// instant is reported as -1.
func (s *Server) Rooms() []RoomInfo {
	infos := s.reg.Rooms()
	out := make([]RoomInfo, len(infos))
	for i, ri := range infos {
		out[i] = RoomInfo(ri)
	}
	return out
}

// shutdownTimeout bounds the graceful stop of Serve and ListenAndServe.
const shutdownTimeout = 10 * time.Second

// wakeTimeout bounds New's scan of the store for rooms whose saved timer
// is pending.
const wakeTimeout = 30 * time.Second

// httpShutdownGrace is how long Serve lets plain HTTP requests (static
// files, metrics) finish once every WebSocket client is closed.
const httpShutdownGrace = 500 * time.Millisecond

// Serve serves rooms built by f on ln until ctx is done, then shuts down
// gracefully (at most 10 s) and returns nil. It returns an error if opts are
// invalid or serving fails. It closes ln.
func Serve(ctx context.Context, ln net.Listener, f stateroom.Factory, opts Options) error {
	s, err := New(f, opts)
	if err != nil {
		ln.Close()
		return err
	}
	return s.Serve(ctx, ln)
}

// ListenAndServe listens on the TCP address addr and calls [Serve]. A port
// already in use gives an error that says so and suggests another port.
func ListenAndServe(ctx context.Context, addr string, f stateroom.Factory, opts Options) error {
	return listenAndServe(ctx, addr, f, opts, nil)
}

// listenAndServe is ListenAndServe, with TLS when cfg is not nil.
func listenAndServe(ctx context.Context, addr string, f stateroom.Factory, opts Options, cfg *tls.Config) error {
	s, err := New(f, opts)
	if err != nil {
		return err
	}
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.serveWith(ctx, ln, cfg)
}

// Listen listens on the TCP address addr as [ListenAndServe] does: with no
// TCP keep-alive on accepted connections (the heartbeat finds dead
// clients), and with an error that says what to do when the port is taken.
// Use it to take the port before serving, to print a ready line, say.
func Listen(addr string) (net.Listener, error) {
	// No TCP keep-alive on accepted connections: the heartbeat finds dead
	// clients, and keep-alive costs four setsockopt calls per connection
	// (a fifth of the system calls of a short-lived one).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("server: address %s is already in use (is another server running?); stop it or choose another port, such as %s: %w", addr, nextPort(addr), err)
	}
	if err != nil {
		return nil, fmt.Errorf("server: cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// nextPort suggests the address one port above addr.
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n >= 65535 {
		return "another port"
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// Serve serves s on ln until ctx is done, then shuts s down gracefully (at
// most 10 s) and returns nil. It sets the http.Server timeouts a WebSocket
// server needs (see Options.HandshakeTimeout). Use it instead of the
// package-level [Serve] when you keep the *Server, to call
// [Server.SwapFactory] or [Server.CloseRoom] while it serves. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serveWith(ctx, ln, nil)
}

// ServeTLS is [Server.Serve] with TLS, as the package-level [ServeTLS].
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	cfg, err := loadTLS(certFile, keyFile)
	if err != nil {
		ln.Close()
		return err
	}
	return s.serveWith(ctx, ln, cfg)
}

// serveWith serves on ln, with TLS when cfg is set, until ctx is done.
func (s *Server) serveWith(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.HandshakeTimeout,
		// Between requests of a keep-alive connection http.Server waits
		// IdleTimeout (falling back to ReadTimeout); both zero would let a
		// client hold a connection forever after one plain GET.
		IdleTimeout: s.opts.HandshakeTimeout,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg != nil {
		hs.TLSConfig = cfg
		// HTTP/1.1 only: a WebSocket is a hijacked HTTP/1.1 connection,
		// and a browser that negotiated HTTP/2 could try WebSocket over
		// HTTP/2 (RFC 8441), which this server does not speak.
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		ln = tls.NewListener(ln, cfg)
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "tls", cfg != nil)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }() // waited for below, on every path

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		errc <- serveErr
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// The rooms first, with the listener: clients get 1001 at once. net/
	// http's Shutdown closes the listener at once too, but then waits for
	// its connections to go idle, and counts a connection that has sent
	// no request yet (a browser's preconnect) as busy for 5 s.
	hsErr := make(chan error, 1)
	go func() { hsErr <- hs.Shutdown(sctx) }() // waited for below
	err := s.Shutdown(sctx)
	// Every client is closed; what net/http still holds are plain
	// requests in flight and idle sockets. Requests get a moment to end.
	grace := time.NewTimer(httpShutdownGrace)
	select {
	case e := <-hsErr:
		err = errors.Join(err, e)
	case <-grace.C:
		hs.Close()
		<-hsErr // nil or ctx's error: what was left was cut, on purpose
	}
	grace.Stop()
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		return fmt.Errorf("server: serving on %s: %w", ln.Addr(), e)
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
