package server

import (
	"time"

	"github.com/stateroom-go/stateroom"
)

// The heartbeat is one sweeper goroutine per server rather than a timer per
// connection: an idle connection then costs no timer and no wake-up of its
// own, only a flag its reader sets (conn.active) and a timestamp the sweeper
// keeps (conn.lastSeen).

// track registers c with the sweeper, starting the sweeper with the first
// connection. It reports false once Shutdown has begun.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	if !s.sweeping {
		s.sweeping = true
		s.wg.Go(s.sweep)
	}
	s.conns[c] = struct{}{}
	s.peakConns = max(s.peakConns, len(s.conns))
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.maybeReleaseMemory()
	s.mu.Unlock()
}

// sweep pings every client each HeartbeatInterval and closes those silent
// for longer than HeartbeatTimeout, until Shutdown.
func (s *Server) sweep() {
	t := time.NewTicker(s.opts.HeartbeatInterval)
	defer t.Stop()
	var silent, full []*conn
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			silent, full = silent[:0], full[:0]
			s.mu.Lock()
			for c := range s.conns {
				if c.isClosing() {
					continue // already on its way out: no pings, no second kick
				}
				if c.active.Swap(false) {
					c.lastSeen = now
				} else if now.Sub(c.lastSeen) > s.opts.HeartbeatTimeout {
					silent = append(silent, c)
					continue
				}
				if c.send(pingFrame) == queueFull {
					full = append(full, c)
				}
			}
			s.mu.Unlock()
			// Kicking takes room locks, so it happens after s.mu is released.
			for _, c := range silent {
				c.logger().Info("closing client: heartbeat timeout", "silent", now.Sub(c.lastSeen).Round(time.Millisecond))
				c.room.kick(c, stateroom.CloseHeartbeatTimeout, "heartbeat timeout")
			}
			for _, c := range full {
				c.logger().Warn("closing slow consumer: its send queue is full")
				c.room.kick(c, stateroom.CloseSlowConsumer, "slow consumer")
			}
			clear(silent)
			clear(full)
		}
	}
}
