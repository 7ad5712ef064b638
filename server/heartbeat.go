package server

import (
	"time"

	"github.com/stateroom-go/stateroom"
)

// The heartbeat is one sweeper goroutine per server rather than a timer per
// connection: an idle connection then costs no timer and no wake-up of its
// own, only a flag its reader sets (conn.active) and a timestamp the sweeper
// keeps (conn.lastSeen).

// sweep pings every client each HeartbeatInterval and closes those silent
// for longer than HeartbeatTimeout, until Shutdown.
func (s *Server) sweep() {
	t := time.NewTicker(s.opts.HeartbeatInterval)
	defer t.Stop()
	var silent, full []*conn
	for {
		select {
		case <-s.owner.Quit():
			return
		case now := <-t.C:
			silent, full = silent[:0], full[:0]
			s.conns.each(func(c *conn) {
				if c.isClosing() {
					return // already on its way out: no pings, no second kick
				}
				// A throttled client is sending: the server is the one not
				// reading (its pong may wait behind its messages).
				if c.active.Swap(false) || c.throttled.Load() {
					c.lastSeen = now
				} else if now.Sub(c.lastSeen) > s.opts.HeartbeatTimeout {
					silent = append(silent, c)
					return
				}
				if c.Send(pingFrame) == queueFull {
					full = append(full, c)
				}
			})
			// Kicking takes room locks, so it happens after the table's
			// lock is released.
			for _, c := range silent {
				c.logger().Info("closing client: heartbeat timeout", "silent", now.Sub(c.lastSeen).Round(time.Millisecond))
				c.room.Kick(stateroom.CloseHeartbeatTimeout, "heartbeat timeout")
			}
			for _, c := range full {
				c.logger().Warn("closing slow consumer: its send queue is full")
				c.room.Kick(stateroom.CloseSlowConsumer, "slow consumer")
			}
			clear(silent)
			clear(full)
		}
	}
}
