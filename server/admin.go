package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
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
	case p == "/state":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "list the saved rooms with GET /admin/state", http.StatusMethodNotAllowed)
			return
		}
		s.adminState(w, r)
	case strings.HasPrefix(p, "/state/") && len(p) > len("/state/"):
		if r.Method != http.MethodDelete {
			w.Header().Set("Allow", http.MethodDelete)
			http.Error(w, "delete a room's saved state with DELETE /admin/state/{room}", http.StatusMethodNotAllowed)
			return
		}
		id, err := url.PathUnescape(p[len("/state/"):])
		if err != nil {
			http.Error(w, fmt.Sprintf("bad room id in %q: %v; percent-encode the room id", p, err), http.StatusBadRequest)
			return
		}
		if err := s.reg.DeleteState(r.Context(), id, stateroom.CloseRoomClosed, "room state deleted by an operator"); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, rooms.ErrNoStore) {
				status = http.StatusNotFound
			}
			http.Error(w, fmt.Sprintf("deleting the state of room %q: %v", id, err), status)
			return
		}
		s.log.Info("room state deleted through the admin API", "room", id, "remote", clientAddr(r, s.opts.TrustForwardedFor))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "the admin API has GET /admin/rooms, POST /admin/rooms/{room}/close, GET /admin/state and DELETE /admin/state/{room}", http.StatusNotFound)
	}
}

// adminSaved is one room in the JSON of GET /admin/state.
type adminSaved struct {
	ID       string    `json:"id"`
	Revision uint64    `json:"revision"`
	Bytes    int       `json:"bytes"`
	Saved    time.Time `json:"saved"`
}

func (s *Server) adminState(w http.ResponseWriter, r *http.Request) {
	infos, err := s.reg.SavedRooms(r.Context())
	if errors.Is(err, rooms.ErrNoStore) {
		http.Error(w, "this server keeps no room state: start it with a store (Options.Store; stateroom serve persists by default)", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "listing the saved rooms: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out := make([]adminSaved, len(infos))
	for i, in := range infos {
		out[i] = adminSaved{ID: in.Room, Revision: in.Revision, Bytes: in.Size, Saved: in.Saved}
	}
	writeJSON(w, out)
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
	writeJSON(w, out)
}

// writeJSON answers with v as indented JSON, never cached.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
