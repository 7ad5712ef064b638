package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// Server serves the rooms of one service over WebSocket. It is an
// http.Handler; see the package documentation for its routes.
type Server struct {
	opts     Options
	log      *slog.Logger
	fact     atomic.Pointer[stateroom.Factory]
	reg      registry
	upgrader ws.HTTPUpgrader
	files    http.Handler // /status and the static directories

	wg sync.WaitGroup // every goroutine the server started, and every live WebSocket handler

	mu           sync.Mutex
	shuttingDown bool
	sweeping     bool
	conns        map[*conn]struct{}
	quit         chan struct{} // closed when Shutdown begins
	done         chan struct{} // closed when every goroutine has ended, after Shutdown began
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
	s := &Server{
		opts:  o,
		log:   o.Logger,
		conns: make(map[*conn]struct{}),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.fact.Store(&f)
	s.reg = newLocalRegistry(s)
	s.upgrader = ws.HTTPUpgrader{Timeout: o.WriteTimeout}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	})
	if o.ClientDir != "" {
		mux.Handle("/client/", http.StripPrefix("/client", http.FileServer(http.Dir(o.ClientDir))))
	}
	if o.StaticDir != "" {
		mux.Handle("/", http.FileServer(http.Dir(o.StaticDir)))
	}
	s.files = mux
	return s, nil
}

func (s *Server) factory() stateroom.Factory { return *s.fact.Load() }

// ServeHTTP routes a request: GET /ws/{room} joins the room (the id is
// percent-decoded: /ws/a%2Fb is room "a/b"), GET /ws joins
// Options.DefaultRoom, GET /status answers "ok", /client/ and / serve
// Options.ClientDir and Options.StaticDir when set. Paths are taken
// relative to where the server is mounted, so http.StripPrefix works.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case p == "/ws":
		s.serveWS(w, r, s.opts.DefaultRoom)
	case strings.HasPrefix(p, "/ws/"):
		id, err := url.PathUnescape(p[len("/ws/"):])
		if err != nil {
			http.Error(w, fmt.Sprintf("bad room id in %q: %v; percent-encode the room id", p, err), http.StatusBadRequest)
			return
		}
		if id == "" {
			http.Error(w, "empty room id: connect to /ws/{room}, or to /ws for the default room", http.StatusBadRequest)
			return
		}
		s.serveWS(w, r, id)
	default:
		s.files.ServeHTTP(w, r)
	}
}

// serveWS joins room id, upgrades the request and runs the connection on
// this goroutine until it ends.
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
	if len(id) > s.opts.MaxRoomIDLength {
		http.Error(w, fmt.Sprintf("room id is %d bytes long; the limit is %d (Options.MaxRoomIDLength)", len(id), s.opts.MaxRoomIDLength), http.StatusBadRequest)
		return
	}
	if !s.begin() {
		shuttingDown(w)
		return
	}
	defer s.wg.Done()

	rm, err := s.reg.join(id)
	switch {
	case errors.Is(err, errShuttingDown):
		shuttingDown(w)
		return
	case errors.Is(err, stateroom.ErrRoomRefused):
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	nc, rw, _, err := s.upgrader.Upgrade(r, w)
	if err != nil {
		// The upgrader has answered the client with the reason.
		rm.log.Debug("WebSocket upgrade failed", "err", err)
		if nc != nil {
			nc.Close()
		}
		rm.release()
		return
	}
	newConn(s, rm, nc, rw.Reader, r.URL.Query().Get("token")).serve()
}

func shuttingDown(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	http.Error(w, "the server is shutting down; try again later", http.StatusServiceUnavailable)
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

// begin counts a WebSocket handler in s.wg, unless Shutdown has begun.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.wg.Add(1)
	return true
}

// Shutdown stops the server gracefully: new WebSocket connections get 503,
// every client is closed with stateroom.CloseGoingAway and its Disconnect
// delivered, timers stop, services are closed, and Shutdown waits for every
// goroutine the server started. If ctx ends first, it closes the remaining
// sockets at once and returns ctx.Err(). Calling it again waits the same
// way. It does not close listeners: stop the http.Server too (Serve does
// both).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.shuttingDown
	if first {
		s.shuttingDown = true
		close(s.quit)
	}
	s.mu.Unlock()
	if first {
		for _, r := range s.reg.close() {
			r.close(stateroom.CloseGoingAway, "server shutting down")
		}
		// This goroutine ends when the server's last one does; it closes
		// done, which every Shutdown call waits on.
		go func() {
			s.wg.Wait()
			close(s.done)
		}()
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.abort()
		}
		s.mu.Unlock()
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
	n := 0
	for _, r := range s.reg.rooms() {
		if r.close(stateroom.CloseServiceRestart, "service restarted") {
			n++
		}
	}
	s.log.Info("service factory swapped", "rooms_closed", n)
}

// CloseRoom ends room id now: its clients are closed with code and reason,
// their Disconnects delivered, and its service closed. It reports false if
// no such room is running. Code 0 means stateroom.CloseRoomClosed; a code a
// server may not send (below 1000, 1004-1006, 1015-2999, 5000 and up) is
// replaced by stateroom.CloseRoomClosed and logged. The reason is cut to
// 123 bytes.
func (s *Server) CloseRoom(id string, code int, reason string) bool {
	r := s.reg.lookup(id)
	if r == nil {
		return false
	}
	if code == 0 {
		code = stateroom.CloseRoomClosed
	} else if !validCloseCode(code) {
		r.log.Warn("CloseRoom: a server cannot send this close code; using CloseRoomClosed", "code", code)
		code = stateroom.CloseRoomClosed
	}
	return r.close(code, reason)
}

// Rooms returns a snapshot of the running rooms, sorted by id. It never
// waits for a busy room.
func (s *Server) Rooms() []RoomInfo {
	rs := s.reg.rooms()
	out := make([]RoomInfo, 0, len(rs))
	for _, r := range rs {
		out = append(out, RoomInfo{
			ID:           r.id,
			Clients:      int(r.clients.Load()),
			Created:      r.created,
			LastActivity: time.Unix(0, r.lastActivity.Load()),
		})
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// shutdownTimeout bounds the graceful stop of Serve and ListenAndServe.
const shutdownTimeout = 10 * time.Second

// Serve serves rooms built by f on ln until ctx is done, then shuts down
// gracefully (at most 10 s) and returns nil. It returns an error if opts are
// invalid or serving fails. It closes ln.
func Serve(ctx context.Context, ln net.Listener, f stateroom.Factory, opts Options) error {
	s, err := New(f, opts)
	if err != nil {
		ln.Close()
		return err
	}
	return s.serve(ctx, ln)
}

// ListenAndServe listens on the TCP address addr and calls [Serve]. A port
// already in use gives an error that says so and suggests another port.
func ListenAndServe(ctx context.Context, addr string, f stateroom.Factory, opts Options) error {
	s, err := New(f, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("server: address %s is already in use (is another server running?); stop it or choose another port, such as %s: %w", addr, nextPort(addr), err)
	}
	if err != nil {
		return fmt.Errorf("server: cannot listen on %s: %w", addr, err)
	}
	return s.serve(ctx, ln)
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

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("serving", "addr", ln.Addr().String())
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
	err := errors.Join(hs.Shutdown(sctx), s.Shutdown(sctx))
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		return fmt.Errorf("server: serving on %s: %w", ln.Addr(), e)
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
