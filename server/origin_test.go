package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOriginCheck(t *testing.T) {
	var log eventLog
	f := probeFactory(&log, "")
	_, same := startServer(t, f, Options{})
	host := strings.TrimPrefix(same.URL, "http://")
	_, listed := startServer(t, f, Options{AllowedOrigins: []string{"https://app.example.com", "https://*.games.example", "HTTP://LOCALHOST:5173"}})
	_, star := startServer(t, f, Options{AllowedOrigins: []string{"*"}})

	for _, tc := range []struct {
		name   string
		srv    string // which server
		origin string // "" sends no Origin header
		ok     bool
	}{
		{"no origin (not a browser)", "same", "", true},
		{"same origin", "same", "http://" + host, true},
		{"same host, other port", "same", "http://127.0.0.1:1", false},
		{"other site", "same", "https://evil.example", false},
		{"null origin", "same", "null", false},
		{"listed exact", "listed", "https://app.example.com", true},
		{"listed, case differs", "listed", "http://localhost:5173", true},
		{"listed host, other scheme", "listed", "http://app.example.com", false},
		{"wildcard subdomain", "listed", "https://eu.games.example", true},
		{"wildcard deeper subdomain", "listed", "https://a.b.games.example", true},
		{"wildcard does not match the bare domain", "listed", "https://games.example", false},
		{"wildcard does not match a suffix lookalike", "listed", "https://evilgames.example", false},
		{"allow list replaces same origin", "listed", "http://" + host, false},
		{"star allows anything", "any", "https://evil.example", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := map[string]*httptest.Server{"same": same, "listed": listed, "any": star}[tc.srv]
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			if tc.ok {
				c, err := dialWith(t, ts, "/ws/origin", h)
				if err != nil {
					t.Fatalf("Origin %q: %v, want a connection", tc.origin, err)
				}
				expectPrefix(t, c, "hello")
				return
			}
			expectRefused(t, ts, "/ws/origin", h, http.StatusForbidden, "Options.AllowedOrigins")
		})
	}
}

func TestOriginPatternValidation(t *testing.T) {
	f := probeFactory(&eventLog{}, "")
	for _, bad := range []string{"example.com", "https://", "https://a.example.com/path", "https://a.*.example.com", "https://*.", "://x"} {
		_, err := New(f, Options{AllowedOrigins: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), "AllowedOrigins") {
			t.Errorf("AllowedOrigins %q: got %v, want an error naming AllowedOrigins", bad, err)
		}
	}
	for _, good := range []string{"*", "https://a.example.com", "http://localhost:8080", "https://*.example.com"} {
		if _, err := New(f, Options{AllowedOrigins: []string{good}}); err != nil {
			t.Errorf("AllowedOrigins %q: %v", good, err)
		}
	}
}
