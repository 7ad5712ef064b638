package server

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// admission counts the WebSocket connections open now, in total and per
// remote address, for Options.MaxConnections and MaxConnectionsPerIP. A slot
// is taken before the room is joined and given back when the handler ends.
// Its mutex is a leaf: nothing else is locked while it is held.
type admission struct {
	maxTotal, maxPerIP int // NoLimit: none

	mu    sync.Mutex
	total int
	perIP map[string]int
}

// refusal says why admission refused a connection.
type refusal uint8

const (
	admitted refusal = iota
	tooManyConnections
	tooManyFromAddr
)

func (a *admission) acquire(addr string) refusal {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.maxTotal != NoLimit && a.total >= a.maxTotal {
		return tooManyConnections
	}
	if a.maxPerIP != NoLimit && a.perIP[addr] >= a.maxPerIP {
		return tooManyFromAddr
	}
	a.total++
	if a.perIP == nil {
		a.perIP = make(map[string]int)
	}
	a.perIP[addr]++
	return admitted
}

func (a *admission) release(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.perIP[addr]--; a.perIP[addr] <= 0 {
		delete(a.perIP, addr)
	}
}

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
