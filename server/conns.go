package server

import (
	"sync"
	"time"
)

// connTable is the one table of the server's connections: how many are
// open in total and per remote address (Options.MaxConnections,
// MaxConnectionsPerIP), which are live (the heartbeat pings them, Shutdown
// reaches them when a room cannot), the room-creation budget of each
// address (MaxRoomsCreatedPerIP, charged by the room runtime when a join
// creates a room: see createRoom), and the peak that memory release
// measures from (memory.go).
// Which client id a connection has is the room runtime's own table
// (internal/rooms).
//
// A slot is taken before the room is joined and given back when the
// connection ends; a connection is live from its Connect to its end. mu
// may be taken under the registry's and a new room's lock (createRoom's
// hook) and conn.mu under it; never a room's or the registry's lock under
// it.
type connTable struct {
	maxTotal, maxPerIP int // NoLimit: none
	roomsPerMinute     int // MaxRoomsCreatedPerIP; NoLimit: none

	mu    sync.Mutex
	total int
	perIP map[string]int
	live  map[*conn]struct{}

	// creations is each address's room-creation bucket, as the time it
	// is full again (GCRA's theoretical arrival time, Unix nanoseconds):
	// an address absent, or whose time has passed, has its whole budget.
	// Entries whose time has passed are pruned whenever the map has
	// doubled since the last pruning, so it holds about the addresses that
	// created rooms in the last minute, whatever the number of addresses
	// seen.
	creations  map[string]int64
	pruneAt    int
	sweeping   bool          // the heartbeat sweeper runs
	peak       int           // the most live connections since memory was last released
	releasing  bool          // a memory release is scheduled
	memRelease memoryRelease // when to release memory; tests shrink it
	dropped    int           // instances dropped (rooms hibernated or ended) since the last release (memory.go)
	released   time.Time     // when memory was last released (memory.go)
}

// refusal says why the table refused a connection.
type refusal uint8

const (
	admitted refusal = iota
	tooManyConnections
	tooManyFromAddr
)

// minPrune is the size of the creations map below which it is not pruned.
const minPrune = 1024

func newConnTable(maxTotal, maxPerIP, roomsPerMinute int) connTable {
	return connTable{
		maxTotal: maxTotal, maxPerIP: maxPerIP, roomsPerMinute: roomsPerMinute,
		perIP: make(map[string]int), live: make(map[*conn]struct{}),
		creations: make(map[string]int64), pruneAt: minPrune,
		memRelease: defaultMemoryRelease,
	}
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
	t.perIP[addr]++
	return admitted
}

// errTooManyRoomsCreated refuses a join that would create a room past its
// address's MaxRoomsCreatedPerIP; retry is when the next room may be
// created.
type errTooManyRoomsCreated struct{ retry time.Duration }

func (e errTooManyRoomsCreated) Error() string {
	return "too many rooms created from this address (Options.MaxRoomsCreatedPerIP)"
}

// createRoom returns the JoinRequest.Creating hook of a join from addr:
// the room runtime calls it only when the join creates a room, so joining
// a running room, even an empty one in its grace period, is free, and of
// two first joins to a new room only the one that creates it is charged.
// Nil when there is no limit.
func (t *connTable) createRoom(addr string) func() error {
	if t.roomsPerMinute == NoLimit {
		return nil
	}
	return func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		if retry := t.chargeCreation(addr, time.Now()); retry > 0 {
			return errTooManyRoomsCreated{retry}
		}
		return nil
	}
}

// chargeCreation takes one room from addr's creation budget at now, or
// returns how long until there is one. Called with t.mu held.
//
// The budget is a token bucket of roomsPerMinute rooms refilled over a
// minute, kept as GCRA does: one time per address, when the bucket is full
// again. Taking a room moves that time one interval later; a time more
// than a minute ahead means the bucket is empty.
func (t *connTable) chargeCreation(addr string, now time.Time) time.Duration {
	interval := int64(time.Minute) / int64(t.roomsPerMinute)
	n := now.UnixNano()
	full, ok := t.creations[addr]
	next := max(full, n) + interval
	if over := next - n - int64(time.Minute); over > 0 {
		return time.Duration(over)
	}
	if !ok && len(t.creations) >= t.pruneAt {
		for a, f := range t.creations {
			if f <= n {
				delete(t.creations, a)
			}
		}
		t.pruneAt = max(2*len(t.creations), minPrune)
	}
	t.creations[addr] = next
	return 0
}

// release gives back the slot of a connection from addr that never
// became live.
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
