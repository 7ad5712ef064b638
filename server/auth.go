package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
)

// ErrForbidden is wrapped by an Options.Authenticate error to refuse with
// 403 Forbidden (the client is known but may not enter this room) instead of
// 401 Unauthorized (the client did not prove who it is).
var ErrForbidden = errors.New("server: forbidden")

// errBadClientToken refuses a client without the right Options.ClientToken.
var errBadClientToken = errors.New("this server needs a client token: connect with ?auth=TOKEN in the URL or an \"Authorization: Bearer TOKEN\" header (Options.ClientToken)")

// authenticate runs the client token check and the Authenticate hook. The
// error's message is meant for the client.
func (s *Server) authenticate(r *http.Request, roomID string) (identity any, err error) {
	if s.clientToken != nil {
		tok := r.URL.Query().Get("auth")
		if tok == "" {
			tok = bearer(r)
		}
		if !tokenEqual(s.clientToken, tok) {
			return nil, errBadClientToken
		}
	}
	if s.opts.Authenticate == nil {
		return nil, nil
	}
	return s.opts.Authenticate(r, roomID)
}

// bearer returns the token of an "Authorization: Bearer T" header, or "".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// tokenDigest is what a secret token is kept as: comparing fixed-length
// digests in constant time leaks neither the token's bytes nor its length.
func tokenDigest(tok string) *[sha256.Size]byte {
	if tok == "" {
		return nil
	}
	d := sha256.Sum256([]byte(tok))
	return &d
}

// tokenEqual compares a presented token with a digest in constant time.
func tokenEqual(want *[sha256.Size]byte, got string) bool {
	d := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], d[:]) == 1
}

// ClientIdentity returns the identity Options.Authenticate gave client id of
// the room r, or nil if there is none (no hook, an unknown client, or a room
// not run by this package). A service calls it with the Room it was handed,
// from any callback while the client is connected and from the client's
// Disconnect:
//
//	func (g *Game) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
//		user, _ := server.ClientIdentity(r, ev.Client).(*User)
//		...
//	}
func ClientIdentity(r stateroom.Room, id stateroom.ClientID) any {
	return rooms.Identity(r, id)
}
