package rooms

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/store"
)

// Durable rooms. With Config.Store set, a room whose service is a
// stateroom.Snapshotter is saved: at most once per Config.CheckpointInterval
// after events (on one of ten slots per interval shared by all rooms, see
// checkpointDelay), and when it ends (grace period, operator, factory
// swap, shutdown; not after a fault, whose state may be what broke it). The next
// instance of the room, in this process or the next, loads the last save
// and restores it before Init. The room's pending timer is saved with it.

// loadTimeout bounds the load of a room's state at its creation.
const loadTimeout = 10 * time.Second

// touched notes that an event ran, and arms the checkpoint. Called with
// r.mu held, after every callback that returned.
func (r *Room) touched() {
	if r.reg.saver == nil {
		return
	}
	r.dirty = true
	if !r.checkpoint.armed() && !r.ended { // an ending room saves as it ends
		r.checkpoint.arm(r, checkpointDelay(time.Now(), r.reg.cfg.CheckpointInterval), r.save)
	}
}

// checkpointSlots is how many slots an interval has, for checkpointDelay.
const checkpointSlots = 10

// checkpointDelay is how long after now a room that has just become dirty
// saves: until the latest multiple of interval/checkpointSlots (a slot, in
// Unix nanoseconds) that is no later than now+interval.
//
// Why slots: each room arming its own now+interval spreads busy rooms'
// checkpoints over the interval, and a bbolt store, which gathers the
// Saves that arrive within 10 ms into one transaction, then commits a
// room or two per transaction, each with its fdatasyncs: most of what
// checkpointing cost. Rooms whose checkpoints fall in the same slot fire
// at the same instant, whatever shard writes them, and their saves can
// share a commit: with 100 busy rooms started apart, 11-18 commits a
// second instead of 41-47 (docs/PERFORMANCE.md, "Checkpoint cost").
//
// The bounds still hold. The save is never later than now+interval, so a
// crash loses no more than before. A room that saved at slot boundary B
// and is dirty again at now > B arms a boundary no earlier than
// B+interval (itself a boundary, and no later than now+interval), so it
// saves at most once per interval, exactly once per interval while events
// keep coming. Whatever the wall clock does, the delay is more than
// interval less a slot and at most interval. An interval that is not a
// whole number of slots (or shorter than one nanosecond per slot) is used
// as it is: no alignment rather than a rounded interval.
func checkpointDelay(now time.Time, interval time.Duration) time.Duration {
	q := int64(interval / checkpointSlots)
	if q <= 0 || interval%checkpointSlots != 0 {
		return interval
	}
	t := now.UnixNano()
	latest := t + int64(interval)
	off := latest % q
	if off < 0 { // before 1970: % truncates towards zero
		off += q
	}
	return time.Duration(latest - off - t)
}

// save snapshots the service, if anything happened since the last
// snapshot, and hands the bytes to the saver. Called with r.mu held.
func (r *Room) save() {
	if !r.dirty || r.reg.saver == nil {
		return
	}
	data, ok := r.snapshot()
	if !ok {
		return
	}
	r.dirty = false
	r.reg.saver.enqueue(r, data)
}

// snapshot returns the room's envelope, or false when the service cannot
// snapshot (not a Snapshotter, faulted, or its Snapshot failed: logged).
func (r *Room) snapshot() (b []byte, ok bool) {
	sn, isSnap := r.inst.svc.(stateroom.Snapshotter)
	if !isSnap || !r.inst.live() {
		return nil, false
	}
	defer func() {
		if v := recover(); v != nil {
			r.logger().Error("service Snapshot panicked; this save is skipped", "panic", v, "stack", string(debug.Stack()))
			b, ok = nil, false
		}
	}()
	start := time.Now()
	data, err := sn.Snapshot()
	r.reg.metrics.SnapshotSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		r.logger().Warn("service Snapshot failed; this save is skipped", "err", err)
		return nil, false
	}
	return envelope{Data: data, Timer: r.timerDeadline()}.encode(), true
}

// load reads room r's saved state, before its Init. It reports whether the
// instance was restored, and the saved timer deadline to arm after Init
// (zero for none). An error means the state could not be read: the room
// is refused rather than started fresh, whose first save would then fail
// or, worse, replace the state an operator can still recover.
func (r *Room) load(g *Registry) (restored bool, timer time.Time, err error) {
	g.saver.settled(r.id) // the previous instance's last save is written
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	rec, err := g.cfg.Store.Load(ctx, r.id)
	if errors.Is(err, store.ErrNotFound) {
		g.saver.setRevision(r.id, 0)
		return false, time.Time{}, nil
	}
	if errors.Is(err, store.ErrCorrupt) { // damaged below the envelope
		return false, time.Time{}, r.setAside(ctx, 0, err)
	}
	if err != nil {
		g.metrics.StoreErrors.Inc()
		return false, time.Time{}, fmt.Errorf("room %q: cannot load its saved state: %w; the room is refused so that its state is not lost (check the state directory, or delete the room's state through the admin API)", r.id, err)
	}
	g.saver.setRevision(r.id, rec.Revision)
	e, err := decodeEnvelope(rec.Data)
	if err != nil {
		return false, time.Time{}, r.setAside(ctx, rec.Revision, err)
	}
	sn, ok := r.inst.svc.(stateroom.Snapshotter)
	if !ok {
		r.logger().Warn("the room has saved state but its service cannot restore it (no Restore method); starting fresh")
		return false, time.Time{}, nil
	}
	if err := restore(sn, e.Data); err != nil {
		if errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			r.logger().Warn("the room's saved state is from an incompatible build of the service; starting fresh", "err", err)
		} else if err := r.setAside(ctx, rec.Revision, err); err != nil {
			return false, time.Time{}, err
		}
		// Restore may have changed the instance halfway: start over.
		r.inst.close(r)
		if r.inst, err = newInstance(g.cfg.Factory(), r.id); err != nil {
			return false, time.Time{}, err
		}
		return false, time.Time{}, nil
	}
	g.metrics.RoomsRestored.Inc()
	return true, e.Timer, nil
}

// restore calls sn.Restore, turning a panic into an error.
func restore(sn stateroom.Snapshotter, data []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the service's Restore panicked: %v", v)
		}
	}()
	return sn.Restore(data)
}

// setAside moves the room's unusable record out of the way, kept for an
// operator, so the room can start fresh. If the store cannot, the room is
// refused: starting fresh would overwrite the record.
func (r *Room) setAside(ctx context.Context, rev uint64, cause error) error {
	g := r.reg
	r.logger().Error("the room's saved state cannot be restored; it is set aside in the store and the room starts fresh", "err", cause)
	if _, err := g.cfg.Store.SetAside(ctx, r.id, rev, cause.Error()); err != nil {
		g.metrics.StoreErrors.Inc()
		return fmt.Errorf("room %q: its saved state cannot be restored (%v) and cannot be set aside: %w; the room is refused so that the state is kept", r.id, cause, err)
	}
	g.saver.setRevision(r.id, 0)
	return nil
}
