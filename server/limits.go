package server

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// clientAddr is the address a request counts against for
// MaxConnectionsPerIP: the TCP peer's IP, or with trustForwarded the last
// X-Forwarded-For entry (the one the proxy in front of us appended; the
// entries before it are whatever the client claimed).
func clientAddr(r *http.Request, trustForwarded bool) string {
	if trustForwarded {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := strings.TrimSpace(last); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// rateLimiter is a token bucket for one client's messages (Options.
// MessageRate, MessageBurst). It belongs to the connection's reader
// goroutine, so it needs no lock.
type rateLimiter struct {
	rate   float64 // tokens per second; 0: no limit
	burst  float64
	tokens float64 // may go below zero: a debt the reader waits out (Throttle)
	last   time.Time
}

func newRateLimiter(rate float64, burst int) rateLimiter {
	if rate <= 0 {
		return rateLimiter{}
	}
	return rateLimiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// reserve takes a token for one message and returns zero if there was one,
// or else how long until the bucket has refilled enough to pay for it.
// The token is taken either way (on credit): a throttled reader waits that
// long and goes on, and the next message finds the debt paid, so waits
// add up to exactly the rate. A reader that closes the client instead
// takes the debt with it.
func (l *rateLimiter) reserve() time.Duration {
	if l.rate == 0 {
		return 0
	}
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}
