package server

// readiness returns the server's poller, starting it the first time a
// connection parks, or nil when the platform or the process cannot have
// one (then every connection keeps a reader goroutine; see conn.park).
func (s *Server) readiness() *poller {
	s.pollOnce.Do(func() {
		p, err := newPoller()
		if err != nil {
			s.log.Warn("idle connections will each keep a goroutine: no readiness poller", "err", err)
			return
		}
		s.poll = p
	})
	return s.poll
}

// stopPoller stops the poller once every connection has ended, and makes
// sure none starts after.
func (s *Server) stopPoller() {
	s.pollOnce.Do(func() {})
	if s.poll != nil {
		s.poll.stop()
	}
}
