package server

import (
	"runtime/debug"
	"time"
)

// memoryRelease says when the server hands memory back to the operating
// system after connections close (see Options.KeepFreedMemory). Tests
// shrink it; it is guarded by Server.mu.
type memoryRelease struct {
	minDrop int           // the fewest connections closed since the peak
	delay   time.Duration // from the trigger to the release, so that a mass close ends first
	free    func()
}

// defaultMemoryRelease releases memory a second after 1024 or more
// connections, and at least half of the peak, have closed. Why at all: the
// runtime returns freed heap only to keep it near its next GC goal, and the
// next GC of a server left idle comes with the two-minute forced one;
// measured with `stateroom bench conns` at 19,900 connections, RSS stayed
// at its peak (90 MB against 12 MB before) for minutes after every client
// had gone (docs/PERFORMANCE.md).
var defaultMemoryRelease = memoryRelease{minDrop: 1024, delay: time.Second, free: debug.FreeOSMemory}

// maybeReleaseMemory schedules a release when enough connections have
// closed since the peak. Called with s.mu held, as a connection goes.
func (s *Server) maybeReleaseMemory() {
	n := len(s.conns)
	if s.opts.KeepFreedMemory || s.releasing || s.shuttingDown ||
		s.peakConns-n < s.release.minDrop || n > s.peakConns/2 {
		return
	}
	s.releasing = true
	rel := s.release
	s.wg.Go(func() { s.releaseMemory(rel) })
}

// releaseMemory waits for the close to settle, then returns freed memory
// to the operating system, unless the server shuts down first.
func (s *Server) releaseMemory(rel memoryRelease) {
	t := time.NewTimer(rel.delay)
	defer t.Stop()
	select {
	case <-s.quit:
		return
	case <-t.C:
	}
	start := time.Now()
	rel.free()
	s.mu.Lock()
	s.peakConns = len(s.conns)
	s.releasing = false
	n := s.peakConns
	s.mu.Unlock()
	if s.debugOn() {
		s.log.Debug("returned freed memory to the operating system", "connections", n, "took", time.Since(start))
	}
}
