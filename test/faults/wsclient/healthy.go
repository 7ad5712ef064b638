package wsclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ErrDelivery is wrapped by every error about a message a healthy client
// did not get, got twice or got out of order.
var ErrDelivery = errors.New("wsclient: delivery broken")

// Unwrap extracts the text a relay sent back from one received message;
// ok is false for a message that is not a relayed one (and is ignored).
// The default, for a relay that sends messages back verbatim, returns text
// messages as they are.
type Unwrap func(binary bool, data []byte) (text []byte, ok bool)

// GroupOptions configures [JoinGroup]. The zero value is usable.
type GroupOptions struct {
	// Unwrap extracts relayed text from a received message. Nil means
	// verbatim text messages.
	Unwrap Unwrap
	// Pad makes each message at least this many bytes long (padding with
	// '.'). Zero means no padding.
	Pad int
}

// Group is a set of healthy clients in one room of a relay service (a
// service that sends every message to everyone in the room, the sender
// included). Each client sends numbered text messages "h SENDER SEQ" and
// checks that every client of the group gets every message of every
// sender exactly once and in the sender's order. Messages of clients
// outside the group are ignored, so faulty clients may share the room.
//
// The clients are gorilla/websocket connections: an implementation
// independent of the server's.
type Group struct {
	opts  GroupOptions
	peers []*peer
	wg    sync.WaitGroup // the readers

	closing atomic.Bool // Close has begun: disconnects are expected

	mu  sync.Mutex
	err error // the first delivery error
}

type peer struct {
	g     *Group
	n     int
	conn  *websocket.Conn
	wmu   sync.Mutex
	sent  atomic.Int64 // messages sent, which are the next seq
	got   []atomic.Int64
	joins atomic.Int64 // its own join messages seen
}

// JoinGroup connects n healthy clients to url and waits until the room has
// taken each of them in (each client sees its own join message come back),
// so every later message reaches all of them.
func JoinGroup(ctx context.Context, url string, n int, opts GroupOptions) (*Group, error) {
	if opts.Unwrap == nil {
		opts.Unwrap = func(binary bool, data []byte) ([]byte, bool) { return data, !binary }
	}
	g := &Group{opts: opts}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for i := range n {
		c, resp, err := d.DialContext(ctx, url, nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("wsclient: healthy client %d: dialing %s: %w", i, url, err)
		}
		p := &peer{g: g, n: i, conn: c, got: make([]atomic.Int64, n)}
		g.peers = append(g.peers, p)
		g.wg.Go(p.read)
		if err := p.write("j " + strconv.Itoa(i)); err != nil {
			g.Close()
			return nil, fmt.Errorf("wsclient: healthy client %d: %w", i, err)
		}
	}
	err := poll(ctx, func() bool {
		for _, p := range g.peers {
			if p.joins.Load() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("wsclient: waiting for %d healthy clients to join: %w", n, err)
	}
	return g, nil
}

// Len returns the number of clients in the group.
func (g *Group) Len() int { return len(g.peers) }

// Send makes client i send its next message. It may be called from
// several goroutines.
func (g *Group) Send(i int) error {
	p := g.peers[i]
	p.wmu.Lock()
	defer p.wmu.Unlock()
	msg := "h " + strconv.Itoa(i) + " " + strconv.FormatInt(p.sent.Load(), 10)
	if pad := g.opts.Pad - len(msg); pad > 0 {
		msg += " " + strings.Repeat(".", pad-1)
	}
	if err := p.writeLocked(msg); err != nil {
		return fmt.Errorf("wsclient: healthy client %d: %w", i, err)
	}
	p.sent.Add(1)
	return nil
}

// SendAll makes every client send its next message.
func (g *Group) SendAll() error {
	for i := range g.peers {
		if err := g.Send(i); err != nil {
			return err
		}
	}
	return nil
}

// Counts returns how many messages the clients sent, and how many
// deliveries are due (sent times the group's size) and done.
func (g *Group) Counts() (sent, due, delivered int64) {
	for _, p := range g.peers {
		sent += p.sent.Load()
		for i := range p.got {
			delivered += p.got[i].Load()
		}
	}
	return sent, sent * int64(len(g.peers)), delivered
}

// Err returns the first delivery error seen so far, or the reason a client
// was disconnected.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// WaitDelivered waits until every client has got every message sent so
// far. It returns the first delivery error, or an error wrapping
// ErrDelivery that counts what is missing when ctx ends first.
func (g *Group) WaitDelivered(ctx context.Context) error {
	err := poll(ctx, func() bool {
		if g.Err() != nil {
			return true
		}
		_, due, delivered := g.Counts()
		return delivered >= due
	})
	if e := g.Err(); e != nil {
		return e
	}
	if err != nil {
		_, due, delivered := g.Counts()
		return fmt.Errorf("%w: %d of %d deliveries missing: %w", ErrDelivery, due-delivered, due, err)
	}
	return nil
}

// Close closes every client with a close frame and waits for their
// readers.
func (g *Group) Close() {
	g.closing.Store(true)
	for _, p := range g.peers {
		p.wmu.Lock()
		p.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		p.wmu.Unlock()
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// The server did not answer the close frames: drop the sockets.
		for _, p := range g.peers {
			p.conn.Close()
		}
		<-done
	}
	for _, p := range g.peers {
		p.conn.Close()
	}
}

func (g *Group) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

func (p *peer) write(msg string) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.writeLocked(msg)
}

func (p *peer) writeLocked(msg string) error {
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return p.conn.WriteMessage(websocket.TextMessage, []byte(msg))
}

// read is the client's reader goroutine: it checks every relayed message
// against what its sender sent, until the connection ends.
func (p *peer) read() {
	for {
		typ, data, err := p.conn.ReadMessage()
		if err != nil {
			if !p.g.closing.Load() {
				p.g.fail(fmt.Errorf("%w: healthy client %d was disconnected: %w", ErrDelivery, p.n, err))
			}
			return
		}
		text, ok := p.g.opts.Unwrap(typ == websocket.BinaryMessage, data)
		if !ok {
			continue
		}
		p.receive(string(text))
	}
}

// receive checks one relayed text.
func (p *peer) receive(text string) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return
	}
	sender, err := strconv.Atoi(f[1])
	if err != nil || sender < 0 || sender >= len(p.got) {
		return // not from this group
	}
	switch f[0] {
	case "j":
		if sender == p.n {
			p.joins.Add(1)
		}
	case "h":
		if len(f) < 3 {
			return
		}
		seq, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return
		}
		if want := p.got[sender].Load(); seq != want {
			p.g.fail(fmt.Errorf("%w: healthy client %d got message %d of client %d, want %d (lost, duplicated or reordered)", ErrDelivery, p.n, seq, sender, want))
			return
		}
		p.got[sender].Add(1)
	}
}

// poll checks cond every few milliseconds until it holds or ctx ends.
func poll(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
