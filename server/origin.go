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
// header does not come from a browser page and is allowed. The server's own
// origin is also accepted under an allow list when hostsPinned
// (Options.AllowedHosts is set): then the Host it is compared with is one
// of the server's own names, not whatever a rebound DNS name says.
func originAllowed(r *http.Request, allowed []string, trustForwarded, hostsPinned bool) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (sandboxed iframes, file://) and garbage
	}
	if (len(allowed) == 0 || hostsPinned) && sameOrigin(u, r, trustForwarded) {
		return true
	}
	for _, pattern := range allowed {
		if originMatches(pattern, u.Scheme, u.Host) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether origin is the origin the request was made to:
// the same scheme (an https page may not talk to an http server as if it
// were its own, nor the reverse) and the same host and port, a default
// port (80 for http, 443 for https) written or not.
func sameOrigin(origin *url.URL, r *http.Request, trustForwarded bool) bool {
	scheme := requestScheme(r, trustForwarded)
	return strings.EqualFold(origin.Scheme, scheme) &&
		strings.EqualFold(withoutDefaultPort(origin.Host, scheme), withoutDefaultPort(r.Host, scheme))
}

// requestScheme is the scheme the client used: https over TLS, http
// otherwise, or, with trustForwarded (Options.TrustForwardedFor), what the
// last X-Forwarded-Proto entry says: a proxy that terminates TLS talks
// plain HTTP to this server, and says so in that header. Like
// X-Forwarded-For, the header is a client's to write when no proxy
// replaces it, so it is only read when the forwarded headers are trusted.
func requestScheme(r *http.Request, trustForwarded bool) string {
	if trustForwarded {
		if v := r.Header.Values("X-Forwarded-Proto"); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			switch strings.ToLower(strings.TrimSpace(last)) {
			case "https", "wss":
				return "https"
			case "http", "ws":
				return "http"
			}
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// withoutDefaultPort drops the port from host:port when it is scheme's
// default, which an Origin header omits and a Host header may not.
func withoutDefaultPort(hostport, scheme string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(hostport, ":80"):
		return strings.TrimSuffix(hostport, ":80")
	case scheme == "https" && strings.HasSuffix(hostport, ":443"):
		return strings.TrimSuffix(hostport, ":443")
	}
	return hostport
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

// Host pinning (Options.AllowedHosts) stops DNS rebinding: a page on
// attacker.example whose name is made to resolve to this server's address
// is, to the browser, on the same origin as the server, and sends Host:
// attacker.example and Origin: http://attacker.example, so the same-origin
// check passes. Only a list of the names the server really has tells the
// two apart.

// hostAllowed reports whether the Host header hostport names one of the
// allowed hosts (normalised by checkHostPattern); an empty list allows all.
func hostAllowed(hostport string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	host := normalHost(hostName(hostport))
	if host == "" {
		return false
	}
	for _, pattern := range allowed {
		if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
			if len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == pattern {
			return true
		}
	}
	return false
}

// hostName returns the host of a Host header, without its port and the
// brackets of an IPv6 literal.
func hostName(hostport string) string {
	if rest, ok := strings.CutPrefix(hostport, "["); ok {
		h, _, _ := strings.Cut(rest, "]")
		return h
	}
	if strings.Count(hostport, ":") == 1 {
		h, _, _ := strings.Cut(hostport, ":")
		return h
	}
	return hostport
}

// normalHost lowercases a host name and drops the trailing dot of a fully
// qualified one ("example.com." is example.com).
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// checkHostPattern says what is wrong with an AllowedHosts entry, and
// returns it normalised: lowercase, no trailing dot, no IPv6 brackets.
func checkHostPattern(p string) (string, error) {
	if strings.Contains(p, "://") {
		return "", errors.New(`want a host name like "app.example.com", not a URL: drop the scheme`)
	}
	if strings.ContainsAny(p, "/?# ") {
		return "", errors.New(`want a host name like "app.example.com": no path or spaces`)
	}
	h := p
	if rest, ok := strings.CutPrefix(h, "["); ok {
		inner, tail, ok := strings.Cut(rest, "]")
		if !ok || tail != "" {
			return "", errors.New(`an IPv6 address is written without a port, as "::1" or "[::1]"`)
		}
		h = inner
	} else if strings.Count(h, ":") == 1 {
		return "", errors.New(`a host name has no port: the port of a request is not checked; drop it`)
	}
	h = normalHost(h)
	wild := strings.HasPrefix(h, "*.")
	if strings.Contains(strings.TrimPrefix(h, "*."), "*") {
		return "", errors.New(`a wildcard may only be the first label, as in "*.example.com"`)
	}
	if h == "" || (wild && len(h) == 2) {
		return "", errors.New(`want a host name like "app.example.com" or a pattern like "*.example.com"`)
	}
	return h, nil
}
