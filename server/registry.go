package server

import (
	"errors"
	"fmt"
	"sync"

	"github.com/stateroom-go/stateroom"
)

// Errors of registry.join besides the factory's.
var (
	// errShuttingDown refuses a join once Shutdown has begun.
	errShuttingDown = errors.New("server: shutting down")
	// errTooManyRooms refuses a join that would create a room past
	// Options.MaxRooms.
	errTooManyRooms = errors.New("the server runs as many rooms as it may (Options.MaxRooms); join a running room or try again later")
	// errRoomFull refuses a join to a room at Options.MaxClientsPerRoom.
	errRoomFull = errors.New("room is full")
)

// registry is the seam between connections and rooms: every lookup of a
// room by id goes through it. Today rooms live in this process
// (localRegistry); spreading them over nodes means another implementation
// of this interface, with the rest of the server unchanged.
type registry interface {
	// join returns the live room for id, creating it (factory, then Init)
	// if there is none, with a reservation held for one client who holds
	// the reconnection token token ("" for none): the caller must follow
	// with room.connect or room.release. A factory error comes back as
	// is; errShuttingDown once close was called, errTooManyRooms and
	// errRoomFull at the limits.
	join(id, token string) (*room, error)
	// remove forgets r if it is still the room registered for its id.
	remove(r *room)
	// lookup returns the room registered for id, or nil.
	lookup(id string) *room
	// rooms returns the rooms registered now.
	rooms() []*room
	// close refuses new rooms from now on and returns the rooms registered.
	close() []*room
}

// localRegistry keeps the rooms of this process in a map.
//
// Lock order: a room's mu may be held while taking the registry's mu (a room
// removes itself as it ends), never the other way round.
type localRegistry struct {
	srv *Server

	mu     sync.Mutex
	closed bool
	byID   map[string]*room
}

func newLocalRegistry(s *Server) *localRegistry {
	return &localRegistry{srv: s, byID: make(map[string]*room)}
}

func (g *localRegistry) join(id, token string) (*room, error) {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, errShuttingDown
		}
		r := g.byID[id]
		g.mu.Unlock()

		if r == nil {
			r, err := g.create(id)
			if r != nil || err != nil {
				return r, err
			}
			continue // another join created it first
		}
		r.mu.Lock()
		if !r.ended {
			if r.full(token) {
				r.mu.Unlock()
				return nil, errRoomFull
			}
			r.reserve()
			r.mu.Unlock()
			return r, nil
		}
		// The room ended between the lookup and the lock; it has removed
		// itself, so the next round finds or creates a fresh one.
		r.mu.Unlock()
	}
}

// create registers a new room for id and starts its service. It returns
// (nil, nil) if another join registered one first. The room is locked from
// before it is published until Init has run, so other joins wait for it.
func (g *localRegistry) create(id string) (*room, error) {
	r := newRoom(g.srv, id)
	r.mu.Lock()
	defer r.mu.Unlock()

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, errShuttingDown
	}
	if g.byID[id] != nil {
		g.mu.Unlock()
		return nil, nil
	}
	if max := g.srv.opts.MaxRooms; max != NoLimit && len(g.byID) >= max {
		g.mu.Unlock()
		return nil, errTooManyRooms
	}
	g.byID[id] = r
	g.mu.Unlock()

	// The factory is read after the room is published, so SwapFactory
	// either sees this room (and closes it) or this room gets the new
	// factory.
	svc, err := newService(g.srv.factory(), id)
	if err != nil {
		r.ended = true
		g.remove(r)
		r.logger().Warn("room refused", "err", err)
		return nil, err
	}
	r.svc = svc
	r.reserve()
	g.srv.metrics.roomsCreated.Inc()
	g.srv.metrics.rooms.Inc()
	if g.srv.debugOn() {
		r.logger().Debug("room created")
	}
	r.deliver(evInit, 0, stateroom.Payload{})
	if r.ended {
		return nil, fmt.Errorf("room %q: the service failed in Init (%s); see the server log", id, r.endReason)
	}
	return r, nil
}

// newService calls the factory, turning a panic into an error.
func newService(f stateroom.Factory, id string) (svc stateroom.Service, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("room %q: the service factory panicked: %v", id, v)
		}
	}()
	svc, err = f.NewService(id)
	if err == nil && svc == nil {
		err = fmt.Errorf("room %q: the service factory returned a nil service and no error; return a service or an error", id)
	}
	return svc, err
}

func (g *localRegistry) remove(r *room) {
	g.mu.Lock()
	if g.byID[r.id] == r {
		delete(g.byID, r.id)
	}
	g.mu.Unlock()
}

func (g *localRegistry) lookup(id string) *room {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byID[id]
}

func (g *localRegistry) rooms() []*room {
	g.mu.Lock()
	defer g.mu.Unlock()
	rs := make([]*room, 0, len(g.byID))
	for _, r := range g.byID {
		rs = append(rs, r)
	}
	return rs
}

func (g *localRegistry) close() []*room {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return g.rooms()
}
