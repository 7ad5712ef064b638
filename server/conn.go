package server

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
)

// conn is one client connection. Its reader is a goroutine that lives while
// the client sends (see read); a connection that stays quiet parks with the
// server's poller and holds no goroutine until its socket is readable (see
// park.go). Its writer is a goroutine that lives while frames are queued
// and writes them with one writev per 64 KiB (see writeLoop).
//
// A conn is the rooms.Member of its client: the room queues frames with
// Send and closes it with Close, holding the room's lock, so neither
// blocks. The queue is guarded by c.mu. Lock order: the room's lock, then
// c.mu (see doc.go).
type conn struct {
	srv  *Server
	room rooms.Handle // the client's place in its room; the conn sees nothing else of it
	nc   net.Conn
	addr string // what the connection counts against in the connection table

	// The reader's state: the reader goroutine of the moment owns it.
	wire  wireReader
	msgs  messageReader
	limit rateLimiter
	fd    int // the socket the poller can watch, or -1 (TLS); set in newConn
	// throttling says the reader is in a throttle episode: it has waited
	// for the rate since the client was last within it (one count of
	// stateroom_clients_throttled_total per episode).
	throttling bool

	// parked says no goroutine reads c: the poller, or whoever closes c,
	// starts one (unpark). pollGen is guarded by the poller's lock.
	parked  atomic.Bool
	pollGen uint32

	mu         sync.Mutex
	queue      *frameBatch         // frames waiting for the writer, in send order; nil when none
	queued     int                 // what queue holds, in bytes (queueCost)
	writing    bool                // a writer goroutine runs, or is about to
	closing    bool                // no more frames are queued; the writer ends after closeMsg
	finished   bool                // nothing more will be written; writerDone is closed
	closeMsg   []byte              // close frame the writer sends last; nil for none
	closeCode  stateroom.CloseCode // the code in closeMsg, for the metrics
	queueLimit int                 // frames; 0: no count limit
	byteLimit  int                 // queueCost bytes
	writerDone chan struct{}       // closed once the last write is done

	// readDeadline is the read deadline the writer set for the close
	// handshake, zero for none; the reader's quiet deadline (park.go)
	// gives way to it.
	readDeadline time.Time

	// Heartbeat: the reader sets active on every frame; the sweeper clears
	// it and owns lastSeen. throttled is set while the reader waits for
	// the client's rate: the client is sending, the server is the one not
	// reading, so the sweeper counts it as active (its pong may be behind
	// the bytes the server has not read yet).
	active    atomic.Bool
	throttled atomic.Bool
	lastSeen  time.Time
}

// logger returns the connection's logger, built on use: slog's With
// formats its attributes at once, which would cost every connection and
// room for the few that log anything.
func (c *conn) logger() *slog.Logger { return c.room.Logger() }

// newConn returns the connection for nc, upgraded for the room place h
// holds; pending holds the bytes the HTTP server read past the handshake
// (the client may send before it has the answer), and addr is the address
// its slot in the connection table counts against.
func newConn(s *Server, h rooms.Handle, nc net.Conn, pending []byte, addr string) *conn {
	c := &conn{
		srv:        s,
		room:       h,
		nc:         nc,
		addr:       addr,
		limit:      newRateLimiter(s.opts.MessageRate, s.opts.MessageBurst),
		queueLimit: s.opts.SendQueueMessages,
		byteLimit:  s.opts.SendQueueBytes,
		writerDone: make(chan struct{}),
		lastSeen:   time.Now(),
		fd:         socketFD(nc),
	}
	c.wire.reset(nc, pending)
	c.msgs.init(&c.wire, s.opts.MaxMessageSize, s.opts.MaxMessageFragments)
	c.msgs.onFrame = func() { c.active.Store(true) }
	if c.limit.rate > 0 {
		c.msgs.rate = c
	}
	// A pong that woke a parked connection must not leave its reader
	// blocked inside next: back at a message boundary, it parks again.
	c.msgs.drained = func() bool { return !c.wire.buffered() }
	c.msgs.onPing = func(p []byte) error {
		if c.Send(serverFrame(ws.OpPong, p)) == queueFull {
			c.logger().Warn("closing slow consumer: its send queue is full")
			c.room.Kick(stateroom.CloseSlowConsumer, "slow consumer")
		}
		return nil
	}
	return c
}

// What became of a frame given to conn.Send.
const (
	queued         = rooms.Queued
	droppedClosing = rooms.DroppedClosing // the client is being closed
	queueFull      = rooms.QueueFull      // the caller must close the client as a slow consumer
)

// queueEntryBytes is what a queued frame costs besides its bytes: its
// slice header in the queue's array.
const queueEntryBytes = int(unsafe.Sizeof([]byte(nil)))

// queueCost is what frame costs the queue it waits in. The byte limit
// counts the queue's array too, so that it bounds a queue's memory by
// itself, small frames or large, without a limit on their number: a burst
// of many small messages to a client that reads them is delivered.
func queueCost(frame []byte) int { return len(frame) + queueEntryBytes }

// Send implements rooms.Member: it queues frame for the client, unless the
// client is closing or its queue is full: SendQueueBytes (or
// SendQueueMessages, if set) reached while the writer has not taken the
// queue, because the client is not reading, or not as fast as its room
// sends.
func (c *conn) Send(frame []byte) rooms.SendResult {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		if c.srv.debugOn() {
			c.logger().Debug("message dropped: client is closing")
		}
		return droppedClosing
	}
	if c.queue == nil {
		c.queue = batchPool.Get().(*frameBatch)
	}
	cost := queueCost(frame)
	if n := c.queue.len(); n > 0 && (c.queueLimit > 0 && n >= c.queueLimit || c.queued+cost > c.byteLimit) {
		c.mu.Unlock()
		return queueFull
	}
	c.queue.frames = append(c.queue.frames, frame)
	c.queued += cost
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
		c.srv.owner.Spawn(c.writeLoop)
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

// Close implements rooms.Member: it starts closing the client with code and
// reason: frames queued so far are still written (unless discard is set,
// for a client that is not reading them), then the close frame; later
// frames are dropped. A code of 0 sends a close frame with no body. Only
// the first call counts: it reports whether this call started the close.
func (c *conn) Close(code stateroom.CloseCode, reason string, discard bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.beginClose(code, reason, discard) {
		return false
	}
	c.startWriter() // to write the close frame
	return true
}

// closeHere is Close for the reader as the connection ends: with no
// writer running, it writes what is left and the close frame on the calling
// goroutine, which has nothing else to do, instead of starting a writer.
func (c *conn) closeHere(code stateroom.CloseCode, reason string, discard bool) {
	c.mu.Lock()
	c.beginClose(code, reason, discard)
	here := !c.writing && !c.finished
	c.writing = c.writing || here
	c.mu.Unlock()
	if here {
		c.writeLoop()
	}
}

// beginClose marks c closing with code and reason (see Close) and
// reports whether this call did it. Called with c.mu held.
func (c *conn) beginClose(code stateroom.CloseCode, reason string, discard bool) bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.closeMsg = closeFrame(code, reason)
	c.closeCode = code
	if discard {
		c.discardQueue()
	}
	return true
}

// discardQueue drops the frames not yet written. Called with c.mu held.
func (c *conn) discardQueue() {
	c.queue.reset()
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
	c.unpark()   // a closed socket is no longer watched: its reader must see the error
}

// frameBatch is a queue of frames; the writer swaps a connection's queue
// for an empty one and writes the batch it took. The arrays are pooled:
// while a connection is idle it holds none, and a queue grown by a burst
// serves the next busy connection instead of being allocated again.
type frameBatch struct{ frames [][]byte }

// maxPooledBatch is the largest batch capacity that goes back to batchPool.
const maxPooledBatch = 4096

var batchPool = sync.Pool{New: func() any { return new(frameBatch) }}

// reset empties b, dropping its references to frames; b may be nil.
func (b *frameBatch) reset() {
	if b != nil {
		clear(b.frames)
		b.frames = b.frames[:0]
	}
}

// len returns the number of frames in b; b may be nil.
func (b *frameBatch) len() int {
	if b == nil {
		return 0
	}
	return len(b.frames)
}

// putBatch gives b, empty, back to the pool; b may be nil.
func putBatch(b *frameBatch) {
	if b != nil && cap(b.frames) <= maxPooledBatch {
		b.reset()
		batchPool.Put(b)
	}
}

// writeLoop is a writer goroutine, started by the first frame queued while
// none runs: it takes everything queued and writes it (writeFrames: one
// writev per 64 KiB), until the queue is empty, then ends. An idle connection has no writer.
// The writer that finds the client closing writes the close frame last and
// closes writerDone.
func (c *conn) writeLoop() {
	var spare *frameBatch // the emptied last batch: the next queue
	c.mu.Lock()
	for c.queue.len() > 0 || c.closing {
		batch := c.queue
		c.queue, spare = spare, nil
		c.queued = 0
		closing, closeMsg, closeCode := c.closing, c.closeMsg, c.closeCode
		c.closeMsg = nil
		c.mu.Unlock()

		if batch.len() > 0 {
			if err := c.writeFrames(batch.frames); err != nil {
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout() && !c.isClosing():
					// Not already closed as one (its queue full) or
					// for another reason: a stall of its own.
					c.logger().Warn("closing slow consumer: it accepted no bytes for WriteTimeout", "timeout", c.srv.opts.WriteTimeout)
					c.srv.metrics.slowConsumers.Inc()
				case c.srv.debugOn():
					c.logger().Debug("write failed", "err", err)
				}
				c.abort()
				closing, closeMsg = true, nil
			}
		}
		batch.reset() // drop references to sent frames
		spare = batch
		if closing {
			c.writeClose(closeMsg, closeCode)
			c.mu.Lock()
			c.discardQueue()
			c.finish()
			break
		}
		c.mu.Lock()
	}
	c.writing = false
	putBatch(c.queue)
	c.queue = nil
	c.mu.Unlock()
	putBatch(spare)
}

// writeChunk is the most the writer hands the socket under one write
// deadline: WriteTimeout bounds how long a client may take to accept this
// much, not a whole batch. A client that reads, however slowly (a chunk
// per WriteTimeout: 6.4 KiB/s at the default), gets every byte of a burst
// the size of its queue; one that stops reading accepts nothing and is
// closed within WriteTimeout of its kernel buffers filling.
const writeChunk = 64 << 10

// writeFrames writes frames, in chunks of at most writeChunk bytes each
// under a fresh write deadline, with one writev per chunk (a single frame
// larger than a chunk is written a chunk at a time). It consumes frames'
// entries as net.Buffers does.
func (c *conn) writeFrames(frames [][]byte) error {
	for len(frames) > 0 {
		n, size := 1, len(frames[0])
		for n < len(frames) && size+len(frames[n]) <= writeChunk {
			size += len(frames[n])
			n++
		}
		if size > writeChunk { // one large frame
			for f := frames[0]; len(f) > 0; f = f[min(len(f), writeChunk):] {
				c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
				if _, err := c.nc.Write(f[:min(len(f), writeChunk)]); err != nil {
					return err
				}
			}
		} else {
			c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
			bufs := net.Buffers(frames[:n]) // WriteTo consumes bufs, not frames' length
			if _, err := bufs.WriteTo(c.nc); err != nil {
				return err
			}
		}
		frames = frames[n:]
	}
	return nil
}

// writeClose writes the close frame msg, if there is one, and gives the
// client WriteTimeout to answer with its own.
func (c *conn) writeClose(msg []byte, code stateroom.CloseCode) {
	if msg == nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	if _, err := c.nc.Write(msg); err != nil {
		c.abort()
		return
	}
	c.srv.metrics.closeSent(code)
	// After that the reader stops waiting; a parked connection needs a
	// reader for the deadline to apply.
	c.mu.Lock()
	c.readDeadline = time.Now().Add(c.srv.opts.WriteTimeout)
	c.nc.SetReadDeadline(c.readDeadline)
	c.mu.Unlock()
	c.unpark()
}

// start joins the room, on the calling goroutine (the HTTP handler's), and
// starts the connection's reader. The caller has counted c in the server's
// owner (Hold); end releases it.
func (c *conn) start() {
	// Connect sets the client id before any writer starts (writers start
	// from sends, which need the id), so a writer reads it (to log)
	// without the room's lock.
	c.room.Connect(c)
	c.srv.track(c)
	c.srv.owner.Spawn(c.waitAndRead)
}

// waitAndRead is the body of a fresh reader goroutine: it waits for the
// client's next message, then reads.
func (c *conn) waitAndRead() { c.read(true) }

// read reads messages and hands them to the room while the client sends.
// A reader that waits long enough parks the connection and ends (see
// wait). Where c cannot park, a reader whose client goes quiet (every byte
// read, at a message boundary) starts a fresh reader goroutine to wait for
// the next message and returns: handling a message can grow a goroutine's
// stack (the service runs on it) and a waiting goroutine keeps its stack,
// while a fresh one waits on the smallest stack there is. Where c can park,
// the reader waits on (its stack goes when it parks), which spares a client
// that talks a new goroutine and a regrown stack per message. fresh says
// this goroutine has not handled a message yet.
func (c *conn) read(fresh bool) {
	m := c.srv.metrics
	for {
		if !c.wire.buffered() {
			if !c.wire.full {
				c.msgs.release()
				if !fresh && !c.parkable() {
					c.srv.owner.Spawn(c.waitAndRead)
					return
				}
			}
			parked, err := c.wait()
			if parked {
				return
			}
			if err != nil {
				c.end(err)
				return
			}
		}
		fresh = false
		p, err := c.msgs.next()
		if err == errNoMessage {
			continue
		}
		if err != nil {
			c.end(err)
			return
		}
		if err := c.admit(); err != nil {
			c.end(err)
			return
		}
		m.messagesIn.Inc()
		m.bytesIn.Add(float64(len(p.Data)))
		c.room.Message(p)
	}
}

// admit charges one message, ping or pong to the client's rate
// (Options.MessageRate) on its reader. Within the rate it only updates the
// token bucket. Over it, with MessageRateAction CloseClient, it returns
// errRateLimited; with Throttle it waits until the bucket has refilled
// before it returns: the reader reads nothing meanwhile, the client's
// bytes wait in the kernel's buffers, and once those are full the client's
// writes block. No message is lost or reordered.
func (c *conn) admit() error {
	wait := c.limit.reserve()
	if wait <= 0 {
		c.throttling = false
		return nil
	}
	if c.srv.opts.MessageRateAction == CloseClient {
		c.srv.metrics.rateLimited.Inc()
		return errRateLimited
	}
	c.throttle(wait)
	return nil
}

// throttle waits d for the client's rate, or until the client is closed:
// its messages no longer reach the room then, and the reader must get on
// to its close handshake.
func (c *conn) throttle(d time.Duration) {
	if c.isClosing() {
		return
	}
	if !c.throttling {
		c.throttling = true
		c.srv.metrics.throttled.Inc()
		if c.srv.debugOn() {
			c.logger().Debug("throttling client: over its message rate")
		}
	}
	c.throttled.Store(true)
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-c.writerDone: // closed: the close frame is out, or the socket broke
		t.Stop()
	}
	// Active before no longer throttled, so the sweeper never sees
	// neither between two frames.
	c.active.Store(true)
	c.throttled.Store(false)
}

// linger is the end of a close the server started while the client may
// still be sending (a bad frame, a message too big, a flood): closing the
// socket with the client's bytes unread makes the kernel answer with a
// reset, which can destroy the close frame before the client reads it. So,
// as RFC 6455 section 7.1.1 says, it half-closes, then reads and discards
// until the client closes too or WriteTimeout passes.
func (c *conn) linger() {
	if hc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		if hc.CloseWrite() != nil {
			return
		}
	}
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	var discard [512]byte
	for {
		if _, err := c.nc.Read(discard[:]); err != nil {
			return
		}
	}
}

// end finishes the connection after its reader stopped with err: it leaves
// the room, closes the client and waits for its writer.
func (c *conn) end(err error) {
	defer c.srv.owner.Release() // last: c's goroutines are done
	defer c.srv.untrack(c)
	c.room.Leave()

	code, reason, reachable := closeFor(err, &c.srv.opts)
	switch {
	case !reachable:
		var ne net.Error
		if c.srv.debugOn() && (!errors.As(err, &ne) || !ne.Timeout()) {
			c.logger().Debug("connection lost", "err", err)
		}
		c.abort()
	case code >= 1002 && code <= 1009:
		c.logger().Info("closing client", "code", code, "reason", reason)
		c.closeHere(code, reason, true)
		<-c.writerDone
		c.linger()
	default: // the client closed: answer with its code after what is queued
		c.closeHere(code, reason, false)
	}
	<-c.writerDone
	if c.pollGen != 0 { // it has parked: the poller knows it
		c.srv.readiness().forget(c)
	}
	c.nc.Close()
	c.msgs.release()
	c.wire.release()
}
