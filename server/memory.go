package server

import (
	"runtime/debug"
	"time"
)

// memoryRelease says when the server hands memory back to the operating
// system after connections close (see Options.KeepFreedMemory). Tests
// shrink it; it is guarded by the connection table's lock.
type memoryRelease struct {
	minDrop  int           // the fewest connections closed since the peak
	minSlept int           // the fewest rooms hibernated since the last release; 0: never
	spacing  time.Duration // the least time between a release and one for hibernations
	delay    time.Duration // from the trigger to the release, so that a mass close ends first
	free     func()
}

// defaultMemoryRelease releases memory a second after 1024 or more
// connections, and at least half of the peak, have closed. Why at all: the
// runtime returns freed heap only to keep it near its next GC goal, and the
// next GC of a server left idle comes with the two-minute forced one;
// measured with `stateroom bench conns` at 19,900 connections, RSS stayed
// at its peak (90 MB against 12 MB before) for minutes after every client
// had gone (docs/PERFORMANCE.md).
//
// It also releases after 256 rooms hibernated: a hibernated Go-guest
// room leaves some 150 KB of garbage, a connection a few KB, so fewer of
// them make as much to hand back.
// At most one such release every 10 s: each is a full collection, and a
// large server whose rooms hibernate steadily (100,000 rooms, hibernating
// after 5 minutes: 330 a second) would otherwise collect every second.
var defaultMemoryRelease = memoryRelease{minDrop: 1024, minSlept: 256, spacing: 10 * time.Second, delay: time.Second, free: debug.FreeOSMemory}

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
	t.releasing = s.owner.Go(func() { s.releaseMemory(rel) })
}

// noteHibernation counts a room that dropped its instance (hibernation):
// minSlept of them since the last release schedule one, as closed
// connections do. A dropped instance's linear memory is unmapped at once
// (wasmhost), but the rest of it is Go heap (wazero's: some 150 KB for a Go
// guest) that an idle server keeps until its forced collection, two
// minutes later: 1,000 hibernated Go-guest rooms cost 118-131 KiB each
// until then, 21-22 KiB after (docs/PERFORMANCE.md). Called with the
// room's lock held, which comes before the table's (doc.go, Lock order).
func (s *Server) noteHibernation() {
	t := &s.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hibernated++
	if s.opts.KeepFreedMemory || t.releasing || t.memRelease.minSlept <= 0 || t.hibernated < t.memRelease.minSlept ||
		time.Since(t.released) < t.memRelease.spacing {
		return
	}
	rel := t.memRelease
	t.releasing = s.owner.Go(func() { s.releaseMemory(rel) })
}

// releaseMemory waits for the close to settle, then returns freed memory
// to the operating system, unless the server shuts down first.
func (s *Server) releaseMemory(rel memoryRelease) {
	tm := time.NewTimer(rel.delay)
	defer tm.Stop()
	select {
	case <-s.owner.Quit():
		return
	case <-tm.C:
	}
	start := time.Now()
	rel.free()
	t := &s.conns
	t.mu.Lock()
	t.peak = len(t.live)
	t.hibernated = 0
	t.released = time.Now()
	t.releasing = false
	n := t.peak
	t.mu.Unlock()
	if s.debugOn() {
		s.log.Debug("returned freed memory to the operating system", "connections", n, "took", time.Since(start))
	}
}
