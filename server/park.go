package server

import (
	"errors"
	"os"
	"time"
)

// Parking. A goroutine waiting in a read costs its stack and descriptor,
// most of what an idle connection would otherwise cost; a parked
// connection has no goroutine: the server's poller (poller_linux.go)
// watches its socket and starts a reader when bytes or a hangup arrive.
//
// Parking is not free either: arming the watch is a system call, and waking
// takes the poller's thread and a new goroutine, which a chatty client
// would pay on every message (measured: +30% server CPU per frame in a
// broadcast, +25% per room in churn, docs/PERFORMANCE.md). So a reader
// first waits in an ordinary read under a short read deadline
// (quietBeforePark); only a wait that reaches it parks. Connections that
// talk, and short-lived ones, never park. The deadline is the reader's own
// (a timer in Go's poller, reset per wait), so idle connections cost
// nothing once parked: no sweep over every connection.

// quietBeforePark is how long a reader waits for its client's next message
// before it parks the connection.
const quietBeforePark = 100 * time.Millisecond

// wait waits for the client's next bytes, at a message boundary with every
// byte read. It reports parked when the client stayed quiet and c parked:
// the caller must return at once, another goroutine may be reading c
// already.
func (c *conn) wait() (parked bool, err error) {
	if !c.parkable() {
		return false, c.wire.wait()
	}
	for {
		// The quiet deadline and the close handshake's (set by the
		// writer) are both set under c.mu, so the quiet one is never set
		// over the other, and it is cleared before the reader reads on:
		// it can never cut a message in half.
		c.mu.Lock()
		armed := !c.closing
		if armed {
			c.nc.SetReadDeadline(time.Now().Add(time.Duration(c.srv.quietBeforePark.Load())))
		}
		c.mu.Unlock()

		err = c.wire.wait()

		if !armed {
			return false, err
		}
		c.mu.Lock()
		c.nc.SetReadDeadline(c.readDeadline) // zero, unless the writer set one meanwhile
		closing := c.closing
		c.mu.Unlock()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return false, err
		}
		// Quiet for long enough, or the close handshake began and its
		// deadline replaced ours: then wait on under it.
		if !closing && c.park() {
			return true, nil
		}
	}
}

// parkable reports whether c can park: its socket can be watched and the
// server has a poller.
func (c *conn) parkable() bool { return c.fd >= 0 && c.srv.readiness() != nil }

// park leaves c with no reader goroutine until its socket is readable, and
// reports whether it did; the caller, c's reader at a message boundary with
// every byte read, must then return at once. It does not park where the
// server has no poller or c's socket cannot be watched (TLS), nor a closing
// connection, which must wait in a read for its read deadline to apply.
func (c *conn) park() bool {
	p := c.srv.readiness()
	if c.fd < 0 || p == nil {
		return false
	}
	c.msgs.release()
	c.wire.release()
	p.register(c)
	// From here on another goroutine may unpark c and read: this one
	// touches nothing of the reader's. A close that begins after the
	// check below finds c parked and unparks it; one that began before is
	// caught by the check. The gauge counts every change of parked that
	// succeeds.
	c.srv.metrics.parked.Inc()
	c.parked.Store(true)
	closing := c.isClosing()
	if !closing && p.watch(c) {
		return true
	}
	// Not parked after all: unless someone unparked c meanwhile (then
	// their reader reads), this goroutine goes on reading.
	if !c.parked.CompareAndSwap(true, false) {
		return true
	}
	c.srv.metrics.parked.Dec()
	if !closing {
		// The kernel would not watch the socket (out of epoll watches,
		// say): rather than retry at every quiet deadline, this
		// connection keeps its reader from now on.
		p.forget(c)
		c.fd = -1
		if c.srv.debugOn() {
			c.logger().Debug("cannot park the connection: its socket cannot be watched")
		}
	}
	return false
}

// unpark starts a reader for c if it is parked, and does nothing otherwise:
// the poller calls it when c's socket is readable, and a closer when the
// reader must see a deadline or a closed socket.
func (c *conn) unpark() {
	if c.parked.CompareAndSwap(true, false) {
		c.srv.metrics.parked.Dec()
		c.srv.owner.Spawn(c.waitAndRead)
	}
}
