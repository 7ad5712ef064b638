package rooms

import (
	"slices"
	"sync/atomic"

	"github.com/stateroom-go/stateroom"
)

// seatState is where a client is in its room's life.
type seatState uint8

const (
	reserved seatState = iota // joined, not yet connected
	attached                  // a member: messages flow both ways
	leaving                   // detached, its Disconnect still due
	gone                      // left, released, or never admitted
)

// seat is one client's place in a room; it is the Handle of the local
// placement. Fields other than room are guarded by the room's mutex.
type seat struct {
	room     *Room
	member   Member
	id       stateroom.ClientID
	token    string
	identity any
	state    seatState
}

// membership is the one table of a room's clients: every question of who
// is in the room, by id, by token, or in join order, is answered here.
// Guarded by the room's mutex, except count.
type membership struct {
	order   []*seat // attached and leaving seats, in join order
	byID    map[stateroom.ClientID]*seat
	tokens  map[string]stateroom.ClientID // the last id given to each token
	lastID  stateroom.ClientID
	pending int     // reserved seats: joined, not yet connected or released
	leaving []*seat // detached seats whose Disconnect is due, in order

	count atomic.Int32 // attached seats, readable without the lock
}

// attach gives s its id (the one its token held, or the next) and makes it
// a member.
func (t *membership) attach(s *seat) {
	if s.id == 0 {
		t.lastID++
		s.id = t.lastID
		if s.token != "" {
			if t.tokens == nil {
				t.tokens = make(map[string]stateroom.ClientID)
			}
			t.tokens[s.token] = s.id
		}
	}
	s.state = attached
	t.order = append(t.order, s)
	if t.byID == nil {
		t.byID = make(map[stateroom.ClientID]*seat)
	}
	t.byID[s.id] = s
	t.count.Add(1)
}

// holder returns the attached seat that holds token's id, or nil.
func (t *membership) holder(token string) *seat {
	if token == "" {
		return nil
	}
	id, ok := t.tokens[token]
	if !ok {
		return nil
	}
	if s := t.byID[id]; s != nil && s.state == attached {
		return s
	}
	return nil
}

// member returns the attached seat of client id, or nil.
func (t *membership) member(id stateroom.ClientID) *seat {
	if s := t.byID[id]; s != nil && s.state == attached {
		return s
	}
	return nil
}

// detach stops messages to and from s and queues its Disconnect. It leaves
// order alone, so it is safe during a broadcast loop.
func (t *membership) detach(s *seat) {
	s.state = leaving
	t.leaving = append(t.leaving, s)
	t.count.Add(-1)
}

// nextLeaving takes the first seat whose Disconnect is due out of the
// table, or returns nil.
func (t *membership) nextLeaving() *seat {
	if len(t.leaving) == 0 {
		return nil
	}
	s := t.leaving[0]
	t.leaving[0] = nil
	t.leaving = t.leaving[1:]
	t.forget(s)
	return s
}

// forget removes a detached seat from the table.
func (t *membership) forget(s *seat) {
	s.state = gone
	if i := slices.Index(t.order, s); i >= 0 {
		t.order = slices.Delete(t.order, i, i+1)
	}
	if t.byID[s.id] == s {
		delete(t.byID, s.id)
	}
}

// empty reports whether no client is in the room or on its way in.
func (t *membership) empty() bool { return len(t.order) == 0 && t.pending == 0 }

// clear detaches every member at once, as the room ends, and returns the
// seats whose Disconnect is due (those already leaving first).
func (t *membership) clear() (due []*seat, members []*seat) {
	due = t.leaving
	for _, s := range t.order {
		if s.state == attached {
			due = append(due, s)
		}
		members = append(members, s)
		s.state = gone
	}
	for _, s := range t.leaving {
		s.state = gone
	}
	t.count.Store(0)
	t.order, t.leaving, t.byID, t.tokens = nil, nil, nil, nil
	return due, members
}
