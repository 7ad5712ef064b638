package server

import (
	"sync"
)

// connTable is the one table of the server's connections: how many are
// open in total and per remote address (Options.MaxConnections,
// MaxConnectionsPerIP), which are live (the heartbeat pings them, Shutdown
// reaches them when a room cannot), and the peak that memory release
// measures from (memory.go). Which room a connection is in, and under what
// client id, is the room runtime's own table (internal/rooms).
//
// A slot is taken before the room is joined and given back when the
// connection ends; a connection is live from its Connect to its end. mu is
// taken with nothing else held, and conn.mu may be taken under it.
type connTable struct {
	maxTotal, maxPerIP int // NoLimit: none

	mu         sync.Mutex
	total      int
	perIP      map[string]int
	live       map[*conn]struct{}
	sweeping   bool          // the heartbeat sweeper runs
	peak       int           // the most live connections since memory was last released
	releasing  bool          // a memory release is scheduled
	memRelease memoryRelease // when to release memory; tests shrink it
}

// refusal says why the table refused a connection.
type refusal uint8

const (
	admitted refusal = iota
	tooManyConnections
	tooManyFromAddr
)

func newConnTable(maxTotal, maxPerIP int) connTable {
	return connTable{maxTotal: maxTotal, maxPerIP: maxPerIP, live: make(map[*conn]struct{}), memRelease: defaultMemoryRelease}
}

// acquire takes a slot for a connection from addr, unless a limit is
// reached.
func (t *connTable) acquire(addr string) refusal {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.maxTotal != NoLimit && t.total >= t.maxTotal {
		return tooManyConnections
	}
	if t.maxPerIP != NoLimit && t.perIP[addr] >= t.maxPerIP {
		return tooManyFromAddr
	}
	t.total++
	if t.perIP == nil {
		t.perIP = make(map[string]int)
	}
	t.perIP[addr]++
	return admitted
}

// release gives back the slot of a connection from addr that never became
// live.
func (t *connTable) release(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(addr)
}

func (t *connTable) releaseLocked(addr string) {
	t.total--
	if t.perIP[addr]--; t.perIP[addr] <= 0 {
		delete(t.perIP, addr)
	}
}

// track makes c live, starting the heartbeat sweeper with the first one.
func (s *Server) track(c *conn) {
	t := &s.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.sweeping {
		// Refused once Shutdown has begun: then no sweeper is needed.
		t.sweeping = s.owner.Go(s.sweep)
	}
	t.live[c] = struct{}{}
	t.peak = max(t.peak, len(t.live))
}

// untrack removes c, which has ended, and gives back its slot.
func (s *Server) untrack(c *conn) {
	t := &s.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, c)
	t.releaseLocked(c.addr)
	s.maybeReleaseMemory()
}

// each calls f for every live connection, with the table locked: f must
// not take a room's lock.
func (t *connTable) each(f func(c *conn)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.live {
		f(c)
	}
}

// count returns the number of live connections.
func (t *connTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}
