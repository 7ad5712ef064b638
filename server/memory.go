package server

import (
	"runtime/debug"
	"time"
)

// memoryRelease says when the server hands memory back to the operating
// system after connections close or rooms drop their instances (see
// Options.KeepFreedMemory). Tests shrink it; it is guarded by the
// connection table's lock.
type memoryRelease struct {
	minDrop    int           // the fewest connections closed since the peak
	minDropped int           // the fewest instances dropped (rooms hibernated or ended) since the last release; 0: never
	minIdle    int           // the same once no room is left; 0: never
	spacing    time.Duration // the least time between a release and one for minDropped while rooms remain
	delay      time.Duration // from the trigger to the release, so that a mass close ends first
	free       func()
}

// defaultMemoryRelease releases memory a second after 1024 or more
// connections, and at least half of the peak, have closed. Why at all: the
// runtime returns freed heap only to keep it near its next GC goal, and the
// next GC of a server left idle comes with the two-minute forced one;
// measured with `stateroom bench conns` at 19,900 connections, RSS stayed
// at its peak (90 MB against 12 MB before) for minutes after every client
// had gone (docs/PERFORMANCE.md).
//
// It also releases after 256 rooms dropped their instances, by
// hibernating or by ending: a dropped Go-guest instance leaves some 150 KB
// of garbage, a connection a few KB, so fewer of them make as much to hand
// back. At most one such release every 10 s while rooms remain: each is a
// full collection, and a large server whose rooms hibernate or end
// steadily (100,000 rooms, each hibernating after 5 minutes: 330 a second)
// would otherwise collect every second.
//
// And it releases once no room is left, when 64 or more instances were
// dropped since the last release, whatever the spacing: a server idle
// after a burst should come back within seconds, not after its forced
// collection (300 ended Go-guest rooms left it 34-36 MiB above where it
// started). Below 64 what stays is at most 64 x 150 KB, some 9.4 MiB, so
// fewer ended Go-guest rooms come back within 16 MiB without a release
// (issue 14's goal), and a small server whose few rooms come and go does
// not collect each time its last room ends. It goes ahead only if the
// server stayed idle through the second's delay (no room running, none
// ended meanwhile): a server whose rooms come and go one at a time finds
// no room left at nearly every end, and its releases are the steady ones.
var defaultMemoryRelease = memoryRelease{
	minDrop: 1024, minDropped: 256, minIdle: 64,
	spacing: 10 * time.Second, delay: time.Second, free: debug.FreeOSMemory,
}

// maybeReleaseMemory schedules a release when enough connections have
// closed since the peak. Called with the connection table locked, as a
// connection goes.
func (s *Server) maybeReleaseMemory() {
	t := &s.conns
	n := len(t.live)
	if s.opts.KeepFreedMemory || t.releasing || t.peak-n < t.memRelease.minDrop || n > t.peak/2 {
		return
	}
	rel := t.memRelease
	// Refused once Shutdown has begun: the process is going anyway.
	t.releasing = s.owner.Go(func() { s.releaseMemory(rel, -1) })
}

// noteDroppedInstance counts a room that dropped its instance
// (rooms.Config.InstanceDropped): by hibernating or by ending (roomEnded
// true).
// minDropped of them since the last release schedule one, as closed
// connections do, at most one per spacing; minIdle of them do once the
// last room has ended. A dropped instance's linear memory is unmapped at
// once (wasmhost), but the rest of it is Go heap (wazero's: some 150 KB
// for a Go guest) that an idle server keeps until its forced collection,
// two minutes later: 1,000 hibernated Go-guest rooms cost 118-131 KiB
// each until then, 21-22 KiB after (docs/PERFORMANCE.md). A hibernated
// room that later ends counts twice; its snapshot is freed then.
//
// Called with the room's lock held. It takes the registry's lock (to
// count the rooms left) and then the table's, the order doc.go gives
// (Lock order): a room's, then the registry's, then the table's.
func (s *Server) noteDroppedInstance(roomEnded bool) {
	noRooms := roomEnded && s.reg.RoomCount() == 0
	t := &s.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropped++
	rel := t.memRelease
	if s.opts.KeepFreedMemory || t.releasing {
		return
	}
	steady := rel.minDropped > 0 && t.dropped >= rel.minDropped && time.Since(t.released) >= rel.spacing
	idle := noRooms && rel.minIdle > 0 && t.dropped >= rel.minIdle
	if !steady && !idle {
		return
	}
	// A release for an idle server (not a steady one) goes ahead only if
	// the server stayed idle through the delay: no room left and none
	// ended meanwhile. A server whose rooms come and go one at a time has
	// no room left at nearly every end, and without this check collected
	// about once a second (187-378 ms each on a 0.5 GB heap); its releases
	// are the steady ones, at most one per spacing.
	idleAt := -1
	if !steady {
		idleAt = t.dropped
	}
	t.releasing = s.owner.Go(func() { s.releaseMemory(rel, idleAt) })
}

// releaseMemory waits for the close to settle, then returns freed memory
// to the operating system, unless the server shuts down first. idleAt,
// when not -1, is the count of dropped instances when the server was found
// idle: the release is then dropped, the count kept, if a room ended since
// or one is running now.
func (s *Server) releaseMemory(rel memoryRelease, idleAt int) {
	tm := time.NewTimer(rel.delay)
	defer tm.Stop()
	select {
	case <-s.owner.Quit():
		return
	case <-tm.C:
	}
	if idleAt >= 0 {
		busy := s.reg.RoomCount() > 0 // the registry's lock before the table's (doc.go)
		t := &s.conns
		t.mu.Lock()
		if busy || t.dropped != idleAt {
			t.releasing = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
	start := time.Now()
	rel.free()
	t := &s.conns
	t.mu.Lock()
	t.peak = len(t.live)
	t.dropped = 0
	t.released = time.Now()
	t.releasing = false
	n := t.peak
	t.mu.Unlock()
	if s.debugOn() {
		s.log.Debug("returned freed memory to the operating system", "connections", n, "took", time.Since(start))
	}
}
