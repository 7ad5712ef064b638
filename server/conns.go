package server

import (
	"strings"
	"sync"
	"time"
)

// connTable is the one table of the server's connections: how many are
// open in total, per remote address and per room (Options.MaxConnections,
// MaxConnectionsPerIP, and whether a join creates a room, for
// MaxRoomsCreatedPerIP), which are live (the heartbeat pings them, Shutdown
// reaches them when a room cannot), the room-creation budget of each
// address, and the peak that memory release measures from (memory.go).
// Which client id a connection has is the room runtime's own table
// (internal/rooms).
//
// A slot is taken before the room is joined and given back when the
// connection ends; a connection is live from its Connect to its end. mu is
// taken with nothing else held, and conn.mu may be taken under it.
type connTable struct {
	maxTotal, maxPerIP int // NoLimit: none
	roomsPerMinute     int // MaxRoomsCreatedPerIP; NoLimit: none

	mu      sync.Mutex
	total   int
	perIP   map[string]int
	perRoom map[string]*roomSlots // by room id: a room with no slot may not be running
	live    map[*conn]struct{}

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
}

// refusal says why the table refused a connection.
type refusal uint8

const (
	admitted refusal = iota
	tooManyConnections
	tooManyFromAddr
	tooManyRoomsCreated
)

// roomSlots counts the slots held for connections to one room. A
// connection keeps a pointer to it rather than the room id: the id of a
// request is a substring of its request line, which the connection would
// then keep alive, and a pointer is half a string's size.
type roomSlots struct {
	id string // a copy of its own
	n  int
}

// minPrune is the size of the creations map below which it is not pruned.
const minPrune = 1024

func newConnTable(maxTotal, maxPerIP, roomsPerMinute int) connTable {
	return connTable{
		maxTotal: maxTotal, maxPerIP: maxPerIP, roomsPerMinute: roomsPerMinute,
		perIP: make(map[string]int), perRoom: make(map[string]*roomSlots), live: make(map[*conn]struct{}),
		creations: make(map[string]int64), pruneAt: minPrune,
		memRelease: defaultMemoryRelease,
	}
}

// acquire takes a slot for a connection from addr to room, unless a limit
// is reached, and returns the room's count, which the slot's release
// needs. A connection to a room that holds no slot may create it, so it is
// charged to addr's room-creation budget first; when that is spent, retry
// says when the next room may be created. The check and the count happen
// under one lock, so of two first connections to a new room only one is
// charged.
func (t *connTable) acquire(addr, room string) (_ refusal, _ *roomSlots, retry time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.maxTotal != NoLimit && t.total >= t.maxTotal {
		return tooManyConnections, nil, 0
	}
	if t.maxPerIP != NoLimit && t.perIP[addr] >= t.maxPerIP {
		return tooManyFromAddr, nil, 0
	}
	rs := t.perRoom[room]
	if rs == nil {
		if t.roomsPerMinute != NoLimit {
			if retry := t.chargeCreation(addr, time.Now()); retry > 0 {
				return tooManyRoomsCreated, nil, retry
			}
		}
		rs = &roomSlots{id: strings.Clone(room)}
		t.perRoom[rs.id] = rs
	}
	t.total++
	t.perIP[addr]++
	rs.n++
	return admitted, rs, 0
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

// release gives back the slot of a connection from addr to the room of rs
// that never became live.
func (t *connTable) release(addr string, rs *roomSlots) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(addr, rs)
}

func (t *connTable) releaseLocked(addr string, rs *roomSlots) {
	t.total--
	if t.perIP[addr]--; t.perIP[addr] <= 0 {
		delete(t.perIP, addr)
	}
	if rs.n--; rs.n <= 0 {
		delete(t.perRoom, rs.id)
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
	t.releaseLocked(c.addr, c.slots)
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
