package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom"
)

// The admin API lets an operator see and end rooms over HTTP. It is off
// unless Options.AdminToken is set, and every request must carry that token.

// adminRoom is one room in the JSON of GET /admin/rooms.
type adminRoom struct {
	ID          string    `json:"id"`
	Clients     int       `json:"clients"`
	Created     time.Time `json:"created"`
	IdleSeconds float64   `json:"idle_seconds"`
	MemoryBytes *int64    `json:"memory_bytes,omitempty"` // when the service reports it
}

// serveAdmin serves GET /admin/rooms and POST /admin/rooms/{room}/close.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if !tokenEqual(s.adminToken, bearer(r)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stateroom admin"`)
		http.Error(w, "the admin API needs \"Authorization: Bearer TOKEN\" with the server's admin token (Options.AdminToken)", http.StatusUnauthorized)
		return
	}
	p := strings.TrimPrefix(r.URL.EscapedPath(), "/admin")
	switch {
	case p == "/rooms":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "list the rooms with GET /admin/rooms", http.StatusMethodNotAllowed)
			return
		}
		s.adminRooms(w)
	case strings.HasPrefix(p, "/rooms/") && strings.HasSuffix(p, "/close") && len(p) > len("/rooms/")+len("/close"):
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "close a room with POST /admin/rooms/{room}/close", http.StatusMethodNotAllowed)
			return
		}
		id, err := url.PathUnescape(p[len("/rooms/") : len(p)-len("/close")])
		if err != nil {
			http.Error(w, fmt.Sprintf("bad room id in %q: %v; percent-encode the room id", p, err), http.StatusBadRequest)
			return
		}
		if !s.CloseRoom(id, stateroom.CloseRoomClosed, "closed by an operator") {
			http.Error(w, fmt.Sprintf("no room %q is running; GET /admin/rooms lists them", id), http.StatusNotFound)
			return
		}
		s.log.Info("room closed through the admin API", "room", id, "remote", clientAddr(r, s.opts.TrustForwardedFor))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "the admin API has GET /admin/rooms and POST /admin/rooms/{room}/close", http.StatusNotFound)
	}
}

func (s *Server) adminRooms(w http.ResponseWriter) {
	now := time.Now()
	rooms := s.Rooms()
	out := make([]adminRoom, 0, len(rooms))
	for _, ri := range rooms {
		ar := adminRoom{
			ID:          ri.ID,
			Clients:     ri.Clients,
			Created:     ri.Created,
			IdleSeconds: now.Sub(ri.LastActivity).Seconds(),
		}
		if ri.MemoryBytes >= 0 {
			ar.MemoryBytes = &ri.MemoryBytes
		}
		out = append(out, ar)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}
