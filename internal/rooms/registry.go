package rooms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/store"
)

// Registry places every room in this process: it is the local
// [Placement], and the owner of its rooms.
//
// Lock order: a room's mu may be held while taking the registry's mu (a room
// removes itself as it ends), never the other way round.
type Registry struct {
	cfg     Config
	metrics Metrics
	saver   *saver // nil without a store

	// Joins are refused once Config.Owner is closing: the owner's state
	// is the one shutdown state.
	mu    sync.Mutex
	byID  map[string]*Room
	wakes map[string]*wakeup // dormant rooms (dormant.go), none of them in byID

	ended func(id string, code stateroom.CloseCode) // see OnEnded
}

// OnEnded makes the registry call f with the id and close code of every
// room that leaves it for good (not one that becomes dormant), once a join
// from then on would start a new room. f is called with the room's lock
// held, so it must not block. Call it before the registry serves joins: a
// cluster does, to give up the ownership of ended rooms.
func (g *Registry) OnEnded(f func(id string, code stateroom.CloseCode)) { g.ended = f }

// WaitSaved waits until no snapshot of room id is queued or being
// written (each write is bounded), so another server loading the room
// finds the last one.
func (g *Registry) WaitSaved(id string) {
	if g.saver != nil {
		g.saver.settled(id)
	}
}

// Idle reports whether no room with id is in the registry (running,
// starting or hibernated) and none of its snapshots is queued or being
// written.
func (g *Registry) Idle(id string) bool {
	return g.lookup(id) == nil && (g.saver == nil || !g.saver.pending(id))
}

// New returns an empty registry.
func New(cfg Config) *Registry {
	g := &Registry{cfg: cfg, metrics: cfg.Metrics.withDefaults(), byID: make(map[string]*Room), wakes: make(map[string]*wakeup)}
	if cfg.Store != nil {
		g.saver = newSaver(cfg.Store)
		g.saver.start(g)
	}
	return g
}

// Join implements Placement.
func (g *Registry) Join(req JoinRequest) (Handle, error) {
	for {
		if g.cfg.Owner.Closing() {
			return nil, ErrShuttingDown
		}
		g.mu.Lock()
		r := g.byID[req.Room]
		g.mu.Unlock()

		if r == nil {
			r, err := g.create(req.Room, req.Creating)
			if err != nil {
				return nil, err
			}
			if r != nil {
				return g.seat(r, req), nil // create reserved it
			}
			continue // another join created it first
		}
		r.mu.Lock()
		if !r.ended {
			if r.full(req.Token) {
				r.mu.Unlock()
				return nil, ErrRoomFull
			}
			r.reserve()
			r.mu.Unlock()
			return g.seat(r, req), nil
		}
		// The room ended between the lookup and the lock; it has removed
		// itself, so the next round finds or creates a fresh one.
		r.mu.Unlock()
	}
}

func (g *Registry) seat(r *Room, req JoinRequest) *seat {
	return &seat{room: r, token: req.Token, identity: req.Identity}
}

// create registers a new room for id, starts its service and reserves a
// place in it. It returns (nil, nil) if another join registered one first.
// The room is locked from before it is published until Init has run, so
// other joins wait for it. creating, if not nil, may refuse the room (see
// JoinRequest.Creating).
func (g *Registry) create(id string, creating func() error) (*Room, error) {
	r := newRoom(g, id)
	r.mu.Lock()
	defer r.mu.Unlock()

	g.mu.Lock()
	if g.byID[id] != nil {
		g.mu.Unlock()
		return nil, nil
	}
	if max := g.cfg.MaxRooms; max != NoLimit && len(g.byID) >= max {
		g.mu.Unlock()
		return nil, ErrTooManyRooms
	}
	if creating != nil {
		if err := creating(); err != nil {
			g.mu.Unlock()
			return nil, err
		}
	}
	// The room's count in the owner; its end releases it. Taken under
	// g.mu, so Shutdown (run once the owner is closing) sees every room
	// that got one.
	if !g.cfg.Owner.Hold() {
		g.mu.Unlock()
		return nil, ErrShuttingDown
	}
	g.byID[id] = r
	g.cancelWakeLocked(id) // a dormant room's timer is its own again
	g.mu.Unlock()

	// The factory is read after the room is published, so a factory swap
	// either sees this room (and closes it) or this room gets the new
	// factory.
	inst, err := newInstance(g.cfg.Factory(), id)
	if err != nil {
		r.ended = true
		g.remove(r)
		g.cfg.Owner.Release()
		r.logger().Warn("room refused", "err", err)
		return nil, err
	}
	r.inst = inst
	var timer time.Time
	if g.saver != nil {
		if r.restored, timer, err = r.load(g); err != nil {
			r.ended = true
			r.inst.close(r)
			g.remove(r)
			g.cfg.Owner.Release()
			r.logger().Error("room refused", "err", err)
			return nil, err
		}
	}
	r.reserve()
	g.metrics.RoomsCreated.Inc()
	g.metrics.Rooms.Inc()
	if r.debugOn() {
		r.logger().Debug("room created")
	}
	r.deliver(evInit, nil, stateroom.Payload{})
	if !timer.IsZero() && !r.ended && !r.timer.armed() && !r.timerDue {
		// The restored room's timer, unless Init set one of its own.
		r.restoreTimer(timer)
	}
	if r.ended {
		return nil, fmt.Errorf("room %q: the service failed in Init (%s); see the server log", id, r.endReason)
	}
	return r, nil
}

// remove forgets r if it is still the room registered for its id.
func (g *Registry) remove(r *Room) { g.retire(r, time.Time{}) }

// retire forgets r, as remove does, and makes it dormant until wake unless
// that is zero (see dormant.go). Both under one hold of g.mu, so no join
// can start the room in between and find a wake-up scheduled for a
// running room.
func (g *Registry) retire(r *Room, wake time.Time) {
	g.mu.Lock()
	gone := g.byID[r.id] == r
	if gone {
		delete(g.byID, r.id)
		if !wake.IsZero() {
			g.sleepLocked(r.id, wake, false)
		}
	}
	g.mu.Unlock()
	if gone && wake.IsZero() && g.ended != nil {
		g.ended(r.id, r.endCode)
	}
	if g.saver != nil && g.cfg.Owner.Closing() {
		g.saver.wakeAll() // the last room may have gone: writers may end
	}
}

func (g *Registry) lookup(id string) *Room {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byID[id]
}

func (g *Registry) all() []*Room {
	g.mu.Lock()
	defer g.mu.Unlock()
	rs := make([]*Room, 0, len(g.byID))
	for _, r := range g.byID {
		rs = append(rs, r)
	}
	return rs
}

// Info describes a running room.
type Info struct {
	ID           string
	Clients      int
	Created      time.Time
	LastActivity time.Time
	// MemoryBytes is what a MemoryReporter service reports, or -1 when it
	// is none or the room was busy at that instant.
	MemoryBytes int64
}

// Rooms describes the running rooms, sorted by id. It never waits for a
// busy room.
func (g *Registry) Rooms() []Info {
	rs := g.all()
	out := make([]Info, 0, len(rs))
	for _, r := range rs {
		out = append(out, Info{
			ID:           r.id,
			Clients:      int(r.members.count.Load()),
			Created:      r.created,
			LastActivity: time.Unix(0, r.lastActivity.Load()),
			MemoryBytes:  r.memoryBytes(),
		})
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Close ends room id with code and reason, delivering its clients'
// Disconnects, and reports false if no such room is running.
func (g *Registry) Close(id string, code stateroom.CloseCode, reason string) bool {
	r := g.lookup(id)
	return r != nil && r.close(code, reason)
}

// CloseAll ends every running room with code and reason (a factory swap)
// and returns how many it ended.
func (g *Registry) CloseAll(code stateroom.CloseCode, reason string) int {
	n := 0
	for _, r := range g.all() {
		if r.close(code, reason) {
			n++
		}
	}
	return n
}

// Shutdown ends every room with code and
// reason, closing rooms in parallel on at most a few goroutines per CPU,
// so that a room whose service is stuck delays no other. It returns at
// once. Call it from Config.Owner's Close (its during), which counts the
// caller while the closers are spawned. Stuck rooms end when their service
// returns: whoever waits for the owner decides how long to wait
// (Server.Shutdown's ctx).
func (g *Registry) Shutdown(code stateroom.CloseCode, reason string) {
	rs := g.all()
	g.stopWakes()
	if g.saver != nil {
		g.saver.wakeAll() // with no room left, the writers end
	}
	if len(rs) == 0 {
		return
	}
	work := make(chan *Room, len(rs))
	for _, r := range rs {
		work <- r
	}
	close(work)
	workers := min(len(rs), cmp.Or(4*runtime.GOMAXPROCS(0), 4))
	for range workers {
		g.cfg.Owner.Spawn(func() {
			for r := range work {
				r.close(code, reason)
			}
		})
	}
}

// ErrNoStore is returned by the state operations of a registry without a
// store.
var ErrNoStore = errors.New("this server keeps no room state (no store configured)")

// SavedRooms lists the rooms whose state is in the store.
func (g *Registry) SavedRooms(ctx context.Context) ([]store.Info, error) {
	if g.saver == nil {
		return nil, ErrNoStore
	}
	return g.cfg.Store.List(ctx)
}

// DeleteState ends room id if it runs (its clients get code and reason),
// waits for its last save, and deletes its saved state, so that the next
// connection starts it fresh.
func (g *Registry) DeleteState(ctx context.Context, id string, code stateroom.CloseCode, reason string) error {
	if g.saver == nil {
		return ErrNoStore
	}
	g.Close(id, code, reason)
	g.mu.Lock()
	g.cancelWakeLocked(id) // a room without state has no timer to wake for
	g.mu.Unlock()
	g.saver.settled(id)
	if err := g.cfg.Store.Delete(ctx, id); err != nil {
		return err
	}
	g.saver.setRevision(id, 0)
	return nil
}

// RoomCount returns the number of running rooms.
func (g *Registry) RoomCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byID)
}

var _ Placement = (*Registry)(nil)
