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
// first waits in an ordinary read, and only one that has waited through a
// whole tick of the sweeper (quietBeforePark) is kicked out of its read
// with a past deadline and parks: connections that talk, and short-lived
// ones, never park; idle ones park within two ticks.

// quietBeforePark is the sweeper's parking tick: a reader found waiting at
// two ticks in a row, in the same wait, parks.
const quietBeforePark = 100 * time.Millisecond

// aLongTimeAgo is a read deadline in the past, to end a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// wait waits for the client's next bytes, at a message boundary with every
// byte read. It reports parked when the sweeper kicked the wait and c
// parked: the caller must return at once, another goroutine may be
// reading c already.
func (c *conn) wait() (parked bool, err error) {
	for {
		c.mu.Lock()
		c.waiting = true
		c.waits++
		c.mu.Unlock()

		err = c.wire.wait()

		// A kick lands only while waiting is set (both under c.mu), so
		// once it is cleared no past deadline can hit a read inside a
		// message; a kick that did land is undone here.
		c.mu.Lock()
		c.waiting = false
		kicked := c.kicked
		c.kicked = false
		if kicked {
			c.nc.SetReadDeadline(c.readDeadline)
		}
		closing := c.closing
		c.mu.Unlock()
		if !kicked || !errors.Is(err, os.ErrDeadlineExceeded) {
			return false, err
		}
		// The kick ended the wait. A closing connection goes on waiting,
		// under the close handshake's deadline.
		if !closing && c.park() {
			return true, nil
		}
	}
}

// kickQuiet kicks c's reader out of its wait if it has been waiting since
// the sweeper's last look, so that it parks. Called by the sweeper with
// s.mu held.
func (c *conn) kickQuiet() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.waiting || c.closing || c.kicked {
		return
	}
	if c.waitSeen != c.waits {
		c.waitSeen = c.waits // a new wait: give it a whole tick
		return
	}
	c.kicked = true
	c.nc.SetReadDeadline(aLongTimeAgo)
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
	if !c.parkable() {
		return false
	}
	p := c.srv.readiness()
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
	if !c.isClosing() && p.watch(c) {
		return true
	}
	// Not parked after all: unless someone unparked c meanwhile (then
	// their reader reads), this goroutine goes on reading.
	if c.parked.CompareAndSwap(true, false) {
		c.srv.metrics.parked.Dec()
		return false
	}
	return true
}

// unpark starts a reader for c if it is parked, and does nothing otherwise:
// the poller calls it when c's socket is readable, and a closer when the
// reader must see a deadline or a closed socket.
func (c *conn) unpark() {
	if c.parked.CompareAndSwap(true, false) {
		c.srv.metrics.parked.Dec()
		c.srv.wg.Go(c.waitAndRead)
	}
}
