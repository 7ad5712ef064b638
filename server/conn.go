package server

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// conn is one client connection. Its reader runs on the goroutine of the
// HTTP handler that upgraded it (no extra goroutine); its writer is one
// goroutine that drains the outbound queue into a single writev.
//
// Fields under "room-owned" are guarded by the room's mutex; the queue by
// c.mu. Lock order: room.mu, then c.mu (see doc.go).
type conn struct {
	srv   *Server
	room  *room
	nc    net.Conn
	br    *bufio.Reader
	token string
	log   *slog.Logger

	// identity is what Options.Authenticate returned; set before the
	// connection joins its room, read-only after.
	identity any

	// Room-owned.
	id       stateroom.ClientID
	attached bool // a member of the room: messages reach the service
	leaving  bool // detached, its Disconnect not yet delivered

	mu         sync.Mutex
	queue      [][]byte // frames waiting for the writer, in send order
	spare      [][]byte // the writer's last batch, emptied: the next queue
	queued     int      // bytes in queue
	writing    bool     // a writer goroutine runs, or is about to
	closing    bool     // no more frames are queued; the writer ends after closeMsg
	finished   bool     // nothing more will be written; writerDone is closed
	closeMsg   []byte   // close frame the writer sends last; nil for none
	closeCode  int      // the code in closeMsg, for the metrics
	queueLimit int
	byteLimit  int
	writerDone chan struct{} // closed once the last write is done

	// Heartbeat: the reader sets active on every frame; the sweeper clears
	// it and owns lastSeen.
	active   atomic.Bool
	lastSeen time.Time
}

func newConn(s *Server, r *room, nc net.Conn, br *bufio.Reader, token string) *conn {
	return &conn{
		srv:        s,
		room:       r,
		nc:         nc,
		br:         br,
		token:      token,
		log:        r.log,
		queueLimit: s.opts.SendQueueMessages,
		byteLimit:  s.opts.SendQueueBytes,
		writerDone: make(chan struct{}),
		lastSeen:   time.Now(),
	}
}

// sendResult says what became of a frame given to conn.send.
type sendResult uint8

const (
	queued         sendResult = iota
	droppedClosing            // the client is being closed
	queueFull                 // the caller must close the client as a slow consumer
)

// send queues frame for the client, unless the client is closing or its
// queue is full.
func (c *conn) send(frame []byte) sendResult {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.log.Debug("message dropped: client is closing")
		return droppedClosing
	}
	if len(c.queue) > 0 && (len(c.queue) >= c.queueLimit || c.queued+len(frame) > c.byteLimit) {
		c.mu.Unlock()
		return queueFull
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.startWriter()
	c.mu.Unlock()
	return queued
}

// startWriter starts a writer goroutine unless one is running. Called with
// c.mu held: the writer clears c.writing under the same lock when it finds
// nothing left to do, so a frame queued after that starts a new one.
func (c *conn) startWriter() {
	if !c.writing {
		c.writing = true
		c.srv.wg.Go(c.writeLoop)
	}
}

// finish marks that nothing more will be written and wakes serve, which
// waits for it. Called with c.mu held, by the last writer or by abort when
// no writer runs.
func (c *conn) finish() {
	if !c.finished {
		c.finished = true
		close(c.writerDone)
	}
}

// isClosing reports whether the client is being closed.
func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// closeWith starts closing the client with code and reason: frames queued
// so far are still written (unless discard is set, for a client that is not
// reading them), then the close frame; later frames are dropped. A code of 0
// sends a close frame with no body. Only the first call counts: it reports
// whether this call started the close.
func (c *conn) closeWith(code int, reason string, discard bool) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.closeMsg = closeFrame(code, reason)
	c.closeCode = code
	if discard {
		c.discardQueue()
	}
	c.startWriter() // to write the close frame
	c.mu.Unlock()
	return true
}

// discardQueue drops the frames not yet written. Called with c.mu held.
func (c *conn) discardQueue() {
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queued = 0
}

// abort closes a client whose socket is broken: nothing more is written.
func (c *conn) abort() {
	c.mu.Lock()
	c.closing = true
	c.closeMsg = nil
	c.discardQueue()
	if !c.writing {
		c.finish()
	}
	c.mu.Unlock()
	c.nc.Close() // unblocks a writer stuck on the socket
}

// maxIdleQueue is the largest queue capacity a connection keeps once its
// writer has caught up: a queue grown by a burst is dropped, so idle
// connections stay small.
const maxIdleQueue = 64

// writeLoop is a writer goroutine, started by the first frame queued while
// none runs: it takes everything queued and writes it with one writev,
// until the queue is empty, then ends. An idle connection has no writer.
// The writer that finds the client closing writes the close frame last and
// closes writerDone.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.queued = 0
		closing, closeMsg, closeCode := c.closing, c.closeMsg, c.closeCode
		c.closeMsg = nil
		if len(batch) == 0 && !closing {
			c.writing = false
			if cap(batch) <= maxIdleQueue {
				c.spare = batch
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if len(batch) > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
			bufs := net.Buffers(batch) // WriteTo consumes bufs, not batch's length
			_, err := bufs.WriteTo(c.nc)
			clear(batch) // drop references to sent frames
			if err != nil {
				c.log.Debug("write failed", "err", err)
				c.abort()
				closeMsg = nil
				closing = true
			}
		}
		if !closing {
			c.mu.Lock()
			if cap(batch) <= maxIdleQueue {
				c.spare = batch[:0]
			}
			c.mu.Unlock()
			continue
		}
		if closeMsg != nil {
			c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
			if _, err := c.nc.Write(closeMsg); err != nil {
				c.abort()
			} else {
				c.srv.metrics.closeSent(closeCode)
				// The client gets WriteTimeout to answer with its close
				// frame; then the reader stops waiting.
				c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
			}
		}
		c.mu.Lock()
		c.writing = false
		c.discardQueue()
		c.finish()
		c.mu.Unlock()
		return
	}
}

// serve runs the connection on the calling goroutine until it ends: it joins
// the room, reads messages and hands them to the room, then closes the
// client and waits for its writer.
func (c *conn) serve() {
	// connect sets c.id and c.log before any writer starts (writers start
	// from sends, which need the id), so a writer reads them without the
	// room's lock.
	c.room.connect(c)
	c.srv.track(c)
	defer c.srv.untrack(c)

	mr := newMessageReader(c.br, c.srv.opts.MaxMessageSize)
	mr.onFrame = func() { c.active.Store(true) }
	mr.onPing = func(p []byte) error {
		if c.send(serverFrame(ws.OpPong, p)) == queueFull {
			c.log.Warn("closing slow consumer: its send queue is full")
			c.room.kick(c, stateroom.CloseSlowConsumer, "slow consumer")
		}
		return nil
	}
	m := c.srv.metrics
	limit := newRateLimiter(c.srv.opts.MessageRate, c.srv.opts.MessageBurst)
	var err error
	for {
		var p stateroom.Payload
		p, err = mr.next()
		if err != nil {
			break
		}
		if !limit.allow() {
			err = errRateLimited
			m.rateLimited.Inc()
			break
		}
		m.messagesIn.Inc()
		m.bytesIn.Add(float64(len(p.Data)))
		c.room.message(c, p)
	}
	c.room.leave(c)

	code, reason, reachable := closeFor(err, c.srv.opts.MaxMessageSize)
	switch {
	case !reachable:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.log.Debug("connection lost", "err", err)
		}
		c.abort()
	case code >= 1002 && code <= 1009:
		c.log.Info("closing client", "code", code, "reason", reason)
		c.closeWith(code, reason, true)
	default: // the client closed: answer with its code after what is queued
		c.closeWith(code, reason, false)
	}
	<-c.writerDone
	c.nc.Close()
}
