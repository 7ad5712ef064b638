package rooms

import (
	"time"

	"github.com/stateroom-go/stateroom/internal/routines"
)

// ownedTimer is a timer owned by a room: armed and stopped with the room's
// mutex held, its callback runs with the mutex held and only if it is
// still the one armed (a callback already running when the timer was
// stopped or re-armed finds its generation stale and does nothing). The
// room's service timer and its grace period are each one; so will be an
// idle-eviction timer.
type ownedTimer struct {
	t   *time.Timer
	gen uint64
	due time.Time // when the pending firing is due; zero when none
}

// arm replaces any pending firing with one after d, which runs fire with
// r.mu held unless the room has ended.
func (ot *ownedTimer) arm(r *Room, d time.Duration, fire func()) {
	ot.stop(r.reg.cfg.Owner)
	gen := ot.gen
	ot.due = time.Now().Add(d)
	ot.t = r.reg.cfg.Owner.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if gen != ot.gen || r.ended {
			return
		}
		ot.t, ot.due = nil, time.Time{}
		fire()
	})
}

// stop cancels a pending firing.
func (ot *ownedTimer) stop(o *routines.Owner) {
	ot.gen++
	o.Stop(ot.t)
	ot.t, ot.due = nil, time.Time{}
}

// armed reports whether a firing is pending.
func (ot *ownedTimer) armed() bool { return ot.t != nil }
