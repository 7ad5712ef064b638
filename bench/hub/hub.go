// Package hub is the baseline `stateroom bench` compares the Stateroom
// server with: a minimal, idiomatic gorilla/websocket relay, shaped like
// gorilla's chat example. Each connection has a reader and a writer
// goroutine and a buffered channel between the room and the writer; a
// message is written as its own frame with WriteMessage.
//
// It serves the same URLs and behaves as bench/relay on the Stateroom
// server: GET /ws/{room} joins the room (created on first connection,
// removed when empty), and every message goes verbatim, text or binary, to
// everyone in the room, the sender included.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configures a Hub. The zero value is usable; each field states its
// default.
type Options struct {
	// SendQueue is the number of messages queued per client; a client
	// whose queue is full is dropped (closed), as in gorilla's chat
	// example. Zero means 1024, the Stateroom server's default, so that
	// both drop a lagging client at the same point.
	SendQueue int
	// PingInterval is how often the writer pings. Zero means 30 seconds.
	PingInterval time.Duration
	// PongTimeout closes a connection that sent nothing, pongs included,
	// for this long. Zero means 120 seconds.
	PongTimeout time.Duration
	// MaxMessageSize is the largest message a client may send. Zero means
	// 1 MiB.
	MaxMessageSize int64
	// Logger receives connection errors. Nil means slog.Default().
	Logger *slog.Logger
}

// ErrInvalidOptions is wrapped by New's error about a negative option.
var ErrInvalidOptions = errors.New("hub: invalid options")

// Hub is an http.Handler that relays messages among the clients of a room.
type Hub struct {
	opts     Options
	upgrader websocket.Upgrader

	mu      sync.Mutex // guards rooms and closed; taken before a room's mu
	rooms   map[string]*room
	closed  bool
	clients sync.WaitGroup // one count per running reader or writer
}

type room struct {
	mu      sync.Mutex
	clients map[*client]struct{}
}

type message struct {
	kind int // websocket.TextMessage or BinaryMessage
	data []byte
}

type client struct {
	conn *websocket.Conn
	send chan message // closed by whoever removes the client from its room
}

// New returns a Hub, or an error naming a negative option.
func New(opts Options) (*Hub, error) {
	if opts.SendQueue < 0 || opts.PingInterval < 0 || opts.PongTimeout < 0 || opts.MaxMessageSize < 0 {
		return nil, fmt.Errorf("%w: SendQueue, PingInterval, PongTimeout and MaxMessageSize must not be negative (0 means the default)", ErrInvalidOptions)
	}
	if opts.SendQueue == 0 {
		opts.SendQueue = 1024
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.PongTimeout == 0 {
		opts.PongTimeout = 120 * time.Second
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Hub{
		opts:     opts,
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		rooms:    make(map[string]*room),
	}, nil
}

// ServeHTTP upgrades GET /ws/{room} and joins the room.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/ws/")
	if !ok || id == "" {
		http.Error(w, "hub: connect to /ws/{room}", http.StatusNotFound)
		return
	}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		http.Error(w, "hub: shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with the reason
	}
	c := &client{conn: conn, send: make(chan message, h.opts.SendQueue)}
	rm := h.join(id, c)
	if rm == nil { // Shutdown began during the upgrade
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		_ = conn.Close()
		return
	}
	go h.writePump(c)
	go h.readPump(id, rm, c)
}

// join adds c to room id, creating the room; nil once the hub is closed.
// It counts c's two goroutines before they start, under the hub lock, so
// Close cannot miss them.
func (h *Hub) join(id string, c *client) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	rm := h.rooms[id]
	if rm == nil {
		rm = &room{clients: make(map[*client]struct{})}
		h.rooms[id] = rm
	}
	rm.mu.Lock()
	rm.clients[c] = struct{}{}
	rm.mu.Unlock()
	h.clients.Add(2)
	return rm
}

// leave removes c from its room, unless the room dropped it already, and
// removes the room when it is empty.
func (h *Hub) leave(id string, rm *room, c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if _, ok := rm.clients[c]; ok {
		delete(rm.clients, c)
		close(c.send)
	}
	if len(rm.clients) == 0 && h.rooms[id] == rm {
		delete(h.rooms, id)
	}
}

// broadcast queues m for everyone in the room; a client whose queue is full
// is dropped: its writer sees the closed channel and closes the connection.
func (rm *room) broadcast(m message) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for c := range rm.clients {
		select {
		case c.send <- m:
		default:
			delete(rm.clients, c)
			close(c.send)
		}
	}
}

func (h *Hub) readPump(id string, rm *room, c *client) {
	defer h.clients.Done()
	defer func() {
		h.leave(id, rm, c)
		_ = c.conn.Close()
	}()
	c.conn.SetReadLimit(h.opts.MaxMessageSize)
	_ = c.conn.SetReadDeadline(time.Now().Add(h.opts.PongTimeout))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(h.opts.PongTimeout))
	})
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				h.opts.Logger.Debug("hub: read", "room", id, "err", err)
			}
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(h.opts.PongTimeout))
		rm.broadcast(message{kind: kind, data: data})
	}
}

func (h *Hub) writePump(c *client) {
	defer h.clients.Done()
	ticker := time.NewTicker(h.opts.PingInterval)
	defer ticker.Stop()
	defer c.conn.Close()
	const writeWait = 10 * time.Second
	for {
		select {
		case m, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(m.kind, m.data); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// Shutdown refuses new connections, closes every client and waits for their
// goroutines, or until ctx ends (then it returns ctx's error). It may be
// called more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	var clients []*client
	for _, rm := range h.rooms {
		rm.mu.Lock()
		for c := range rm.clients {
			clients = append(clients, c)
		}
		rm.mu.Unlock()
	}
	h.mu.Unlock()
	for _, c := range clients {
		_ = c.conn.Close() // the reader fails, leaves, and so stops the writer
	}
	done := make(chan struct{})
	go func() { h.clients.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
