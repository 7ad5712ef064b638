package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The origin check stops cross-site WebSocket hijacking: browsers send
// cookies with a WebSocket handshake whatever page opened it, and the
// same-origin policy does not apply to WebSockets, so the server must look
// at the Origin header itself.

// originAllowed reports whether the request's Origin header is acceptable
// under the allow list (nil: same origin only). A request without an Origin
// header does not come from a browser page and is allowed.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (sandboxed iframes, file://) and garbage
	}
	if len(allowed) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, pattern := range allowed {
		if originMatches(pattern, u.Scheme, u.Host) {
			return true
		}
	}
	return false
}

// originMatches reports whether the origin scheme://host matches one
// AllowedOrigins entry (validated by checkOriginPattern).
func originMatches(pattern, scheme, host string) bool {
	if pattern == "*" {
		return true
	}
	pScheme, pHost, _ := strings.Cut(pattern, "://")
	if !strings.EqualFold(pScheme, scheme) {
		return false
	}
	if suffix, ok := strings.CutPrefix(pHost, "*"); ok {
		// "*.example.com" matches "a.example.com" and "a.b.example.com",
		// not "example.com" nor "evilexample.com".
		return len(host) > len(suffix) && strings.HasSuffix(strings.ToLower(host), strings.ToLower(suffix))
	}
	return strings.EqualFold(pHost, host)
}

// checkOriginPattern says what is wrong with an AllowedOrigins entry.
func checkOriginPattern(p string) error {
	if p == "*" {
		return nil
	}
	scheme, host, ok := strings.Cut(p, "://")
	if !ok || scheme == "" || host == "" {
		return errors.New(`want an origin like "https://app.example.com", a pattern like "https://*.example.com", or "*"`)
	}
	if strings.ContainsAny(host, "/?#") {
		return errors.New(`an origin has no path: drop everything after the host (and port)`)
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		host = rest
	}
	if strings.Contains(host, "*") {
		return fmt.Errorf(`a wildcard may only be the first label, as in "%s://*.example.com"`, scheme)
	}
	if host == "" {
		return errors.New(`a wildcard needs a domain after it, as in "https://*.example.com"`)
	}
	return nil
}
