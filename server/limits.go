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
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) rateLimiter {
	if rate <= 0 {
		return rateLimiter{}
	}
	return rateLimiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// allow takes a token for one message and reports whether there was one.
func (l *rateLimiter) allow() bool {
	if l.rate == 0 {
		return true
	}
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
