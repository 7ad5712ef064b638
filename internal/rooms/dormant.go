package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/store"
)

// Dormant rooms. A durable room that ends with its state saved and its
// timer pending (its grace period ran out with no client, an operator
// closed it, a factory swap closed it) is not gone: it is dormant. It has
// no Room, no instance and no clients, and it is not a running room (not
// in Rooms, not counted against Config.MaxRooms); all that is left of it
// in the process is one timer in the registry, due at the room's timer
// deadline. At that deadline the registry starts the room as a client's
// join would (load, Restore, Init with Restored), its due timer fires at
// once, and the room lives on like any empty room: for the grace period,
// after which it is dormant again if it set its timer again. A join before
// the deadline starts the room the same way and takes the wake-up over:
// the room's own timer is re-armed from its saved state.
//
// After a restart, WakeTimers makes every saved room with a pending timer
// dormant the same way, so one mechanism serves both.
//
// A room ending at shutdown, after a fault, or whose state is deleted is
// never dormant; neither is one whose last state did not reach the saver
// (no Snapshotter, or its Snapshot failed): waking it would restore older
// state than the room had.

// wakeRetry is how long a dormant room whose wake-up was refused because
// Config.MaxRooms rooms run waits before trying again.
const wakeRetry = time.Second

// wakeup is one dormant room's pending start.
type wakeup struct {
	t       *time.Timer
	refused bool // a start was refused for MaxRooms: logged once until it runs
}

// dormantDeadline returns when room r, which is ending with code, must be
// started again: its timer's deadline if it may go dormant, else zero.
// Called by end with r.mu held, after the room's last save was queued.
func (r *Room) dormantDeadline(code stateroom.CloseCode) time.Time {
	if r.reg.saver == nil || r.reg.cfg.NoDormancy || r.dirty || r.inst.faulted || code == stateroom.CloseServiceFault || r.reg.cfg.Owner.Closing() {
		return time.Time{}
	}
	return r.timerDeadline()
}

// timerDeadline returns when the service's timer fires, or zero when none
// is pending. Called with r.mu held.
func (r *Room) timerDeadline() time.Time {
	switch {
	case r.timerDue:
		return time.Now()
	case r.timer.armed():
		return r.timer.due
	}
	return time.Time{}
}

// restoreTimer re-arms a restored room's saved timer. A deadline that has
// passed (the room was dormant, or the server down, until then) fires now,
// before the room's first client or its grace period: a room woken for its
// timer could otherwise end again before the timer fired. Called by create
// with r.mu held and a place reserved, so the room cannot end meanwhile.
func (r *Room) restoreTimer(deadline time.Time) {
	if d := time.Until(deadline); d > 0 {
		r.armTimer(d)
		return
	}
	r.timerDue = true
	r.settle()
}

// sleepLocked makes room id dormant until at, replacing any wake-up it
// had; refused carries over that a start was refused. Called with g.mu
// held, by counted work (an ending room, a wake-up callback, WakeTimers
// holding the owner). Once the owner is closing nothing is scheduled: the
// store has the deadline for the next process.
func (g *Registry) sleepLocked(id string, at time.Time, refused bool) {
	if g.cfg.Owner.Closing() {
		return
	}
	g.cancelWakeLocked(id)
	w := &wakeup{refused: refused}
	w.t = g.cfg.Owner.AfterFunc(max(time.Until(at), 0), func() { g.wake(id, w) })
	g.wakes[id] = w
}

// cancelWakeLocked drops room id's wake-up, if any. Called with g.mu held.
func (g *Registry) cancelWakeLocked(id string) {
	if w := g.wakes[id]; w != nil {
		g.cfg.Owner.Stop(w.t)
		delete(g.wakes, id)
	}
}

// wake starts dormant room id, whose timer is due, with no client.
func (g *Registry) wake(id string, w *wakeup) {
	g.mu.Lock()
	if g.wakes[id] != w { // cancelled or replaced meanwhile
		g.mu.Unlock()
		return
	}
	delete(g.wakes, id)
	g.mu.Unlock()

	h, err := g.Join(JoinRequest{Room: id})
	switch {
	case err == nil:
		h.Release() // no client: the room's grace period starts
	case errors.Is(err, ErrTooManyRooms):
		if !w.refused {
			g.cfg.Logger.Warn("a dormant room's timer is due but the server runs as many rooms as it may (Options.MaxRooms); retrying every second until a room ends", "room", id, "retry", wakeRetry)
		}
		g.mu.Lock()
		if g.wakes[id] == nil && g.byID[id] == nil {
			g.sleepLocked(id, time.Now().Add(wakeRetry), true)
		}
		g.mu.Unlock()
	case errors.Is(err, ErrShuttingDown):
		// The store keeps the deadline for the next process.
	default:
		g.cfg.Logger.Error("a dormant room's timer is due but the room could not be started; it starts when a client next joins it, or at the next restart", "room", id, "err", err)
	}
}

// stopWakes drops every dormant room's wake-up, at shutdown: their
// deadlines are in the store.
func (g *Registry) stopWakes() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, w := range g.wakes {
		g.cfg.Owner.Stop(w.t)
		delete(g.wakes, id)
	}
}

// DormantCount returns the number of dormant rooms: ended with a pending
// timer, waiting for its deadline (see WakeTimers).
func (g *Registry) DormantCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.wakes)
}

// WakeTimers makes every stored room whose saved timer is pending dormant,
// after a restart: each is started at its timer's deadline (at once if it
// has passed) with no client, its timer fires, and it lives on as any empty
// room (see dormant.go). It returns how many it scheduled. Rooms it cannot
// read are left for their next join to report.
func (g *Registry) WakeTimers(ctx context.Context) (int, error) {
	if g.saver == nil {
		return 0, nil
	}
	// Timers are counted work of the owner: hold it while scheduling them.
	if !g.cfg.Owner.Hold() {
		return 0, ErrShuttingDown
	}
	defer g.cfg.Owner.Release()
	infos, err := g.cfg.Store.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing the saved rooms: %w", err)
	}
	n := 0
	for _, info := range infos {
		deadline, err := g.savedTimer(ctx, info)
		if err != nil || deadline.IsZero() {
			continue
		}
		g.mu.Lock()
		if g.byID[info.Room] == nil { // a running room has its own timer
			g.sleepLocked(info.Room, deadline, false)
			n++
		}
		g.mu.Unlock()
	}
	return n, nil
}

// savedTimer returns the timer deadline saved with a room, zero for none.
func (g *Registry) savedTimer(ctx context.Context, info store.Info) (time.Time, error) {
	rec, err := g.cfg.Store.Load(ctx, info.Room)
	if err != nil {
		return time.Time{}, err
	}
	e, err := decodeEnvelope(rec.Data)
	return e.Timer, err
}
