package rooms

import (
	"fmt"
	"time"

	"github.com/stateroom-go/stateroom"
)

// Hibernation. A room whose service is a stateroom.Snapshotter and that has
// handled no event for Config.HibernateAfter drops its instance: the
// snapshot stays in memory (and goes to the store, if any) while its
// clients stay connected and its timers armed. The next event (a message,
// a client joining or leaving, the timer) builds a fresh instance from the
// factory, restores the snapshot, runs Init with Restored set, and then
// handles the event: clients notice only latency.

// armIdle arms the hibernation check after an event. It re-arms only when
// no check is pending: the check itself looks at the room's last activity,
// so a busy room pays no timer per event.
func (r *Room) armIdle() {
	after := r.reg.cfg.HibernateAfter
	if after <= 0 || r.idle.armed() || r.ended {
		return
	}
	if _, ok := r.inst.svc.(stateroom.Snapshotter); !ok {
		return
	}
	r.idle.arm(r, after, r.idleCheck)
}

// idleCheck hibernates the room if it has been idle long enough, and looks
// again later otherwise. Called with r.mu held.
func (r *Room) idleCheck() {
	after := r.reg.cfg.HibernateAfter
	idle := time.Since(time.Unix(0, r.lastActivity.Load()))
	if idle < after {
		r.idle.arm(r, after-idle, r.idleCheck)
		return
	}
	r.hibernate()
}

// hibernate snapshots the service and drops its instance. A service whose
// Snapshot fails stays awake (logged by snapshot). Called with r.mu held.
func (r *Room) hibernate() {
	if r.ended || r.sleeping != nil || !r.inst.live() {
		return
	}
	data, ok := r.snapshot()
	if !ok {
		return
	}
	if r.reg.saver != nil {
		r.dirty = false
		r.reg.saver.enqueue(r, data)
	}
	r.checkpoint.stop(r.reg.cfg.Owner)
	r.sleeping = data
	r.inst.close(r)
	r.reg.metrics.Hibernations.Inc()
	if f := r.reg.cfg.InstanceDropped; f != nil {
		f(false)
	}
	if r.debugOn() {
		r.logger().Debug("room hibernated", "snapshot_bytes", len(data))
	}
}

// wake rebuilds the instance of a hibernated room and runs its Init, before
// the event kind about seat s (nil for a timer) is delivered. It reports
// false if it could not: the room has then ended with CloseServiceFault.
// Called with r.mu held.
func (r *Room) wake(kind eventKind, s *seat) bool {
	data := r.sleeping
	r.sleeping = nil
	fail := func(err error) bool {
		r.logger().Error("the hibernated room could not be woken; ending it", "err", err)
		r.reg.metrics.Fault("wake")
		r.end(stateroom.CloseServiceFault, "room could not be woken", false)
		return false
	}
	e, err := decodeEnvelope(data)
	if err != nil {
		return fail(err) // our own bytes, kept in memory: a bug if it happens
	}
	inst, err := newInstance(r.reg.cfg.Factory(), r.id)
	if err != nil {
		return fail(err)
	}
	sn, ok := inst.svc.(stateroom.Snapshotter)
	if !ok {
		inst.close(r)
		return fail(fmt.Errorf("the factory's new service is not a stateroom.Snapshotter"))
	}
	if err := restore(sn, e.Data); err != nil {
		inst.close(r)
		return fail(err)
	}
	r.inst = inst
	r.restored = true
	r.reg.metrics.Wakes.Inc()
	// The clients stayed connected: Init names them (room.go, present).
	r.kept = r.present(kind, s)
	r.call(evInit, nil, stateroom.Payload{})
	r.kept = nil
	return r.inst.live()
}
