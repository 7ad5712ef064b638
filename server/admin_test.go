package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

const adminToken = "0123456789abcdef-admin"

// sized is a probe that reports its memory, as a WebAssembly instance would.
type sized struct{ *probe }

func (sized) MemoryBytes() int64 { return 65536 }

func adminDo(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	var header http.Header
	if token != "" {
		header = http.Header{"Authorization": {"Bearer " + token}}
	}
	return httpDo(t, method, url, header)
}

func TestAdminAPI(t *testing.T) {
	var log eventLog
	f := stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
		p := &probe{log: &log, inst: instances.Add(1)}
		if id == "big" {
			return sized{p}, nil
		}
		return p, nil
	})
	_, ts := startServer(t, f, Options{AdminToken: adminToken, RoomGracePeriod: KeepRoomsForever})
	a := dial(t, ts, "/ws/a%2Fb") // room "a/b"
	expectPrefix(t, a, "hello 1 room=a/b")
	expectPrefix(t, dial(t, ts, "/ws/a%2Fb"), "hello 2")
	expectPrefix(t, dial(t, ts, "/ws/big"), "hello 1")

	for _, tok := range []string{"", "wrong-token-wrong-token", adminToken + "x"} {
		if code, body := adminDo(t, "GET", ts.URL+"/admin/rooms", tok); code != http.StatusUnauthorized || !strings.Contains(body, "Options.AdminToken") {
			t.Errorf("GET /admin/rooms with token %q: %d %q, want 401 naming Options.AdminToken", tok, code, body)
		}
		if code, _ := adminDo(t, "POST", ts.URL+"/admin/rooms/big/close", tok); code != http.StatusUnauthorized {
			t.Errorf("POST close with token %q: %d, want 401", tok, code)
		}
	}

	code, body := adminDo(t, "GET", ts.URL+"/admin/rooms", adminToken)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/rooms: %d %q", code, body)
	}
	var rooms []struct {
		ID          string    `json:"id"`
		Clients     int       `json:"clients"`
		Created     time.Time `json:"created"`
		IdleSeconds float64   `json:"idle_seconds"`
		MemoryBytes *int64    `json:"memory_bytes"`
	}
	if err := json.Unmarshal([]byte(body), &rooms); err != nil {
		t.Fatalf("GET /admin/rooms: %v in %q", err, body)
	}
	if len(rooms) != 2 || rooms[0].ID != "a/b" || rooms[0].Clients != 2 || rooms[1].ID != "big" || rooms[1].Clients != 1 {
		t.Fatalf("GET /admin/rooms = %+v, want a/b with 2 clients and big with 1", rooms)
	}
	if rooms[0].MemoryBytes != nil || rooms[1].MemoryBytes == nil || *rooms[1].MemoryBytes != 65536 {
		t.Errorf("memory_bytes: a/b %v, big %v; want none and 65536", rooms[0].MemoryBytes, rooms[1].MemoryBytes)
	}
	if r := rooms[0]; time.Since(r.Created) > time.Minute || r.IdleSeconds < 0 || r.IdleSeconds > 60 {
		t.Errorf("room a/b: created %v, idle %v s", r.Created, r.IdleSeconds)
	}

	if code, body := adminDo(t, "POST", ts.URL+"/admin/rooms/a%2Fb/close", adminToken); code != http.StatusNoContent {
		t.Fatalf("POST /admin/rooms/a%%2Fb/close: %d %q", code, body)
	}
	expectClose(t, a, stateroom.CloseRoomClosed, "closed by an operator")
	if code, body := adminDo(t, "POST", ts.URL+"/admin/rooms/a%2Fb/close", adminToken); code != http.StatusNotFound || !strings.Contains(body, "no room") {
		t.Errorf("closing a closed room: %d %q, want 404", code, body)
	}
	if code, _ := adminDo(t, "GET", ts.URL+"/admin/rooms/big/close", adminToken); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on close: %d, want 405", code)
	}
	if code, _ := adminDo(t, "GET", ts.URL+"/admin/nothing", adminToken); code != http.StatusNotFound {
		t.Errorf("GET /admin/nothing: %d, want 404", code)
	}
}

func TestAdminAPIOff(t *testing.T) {
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{})
	if code, _ := adminDo(t, "GET", ts.URL+"/admin/rooms", ""); code != http.StatusNotFound {
		t.Errorf("GET /admin/rooms with no AdminToken: %d, want 404", code)
	}
	if _, err := New(probeFactory(&eventLog{}, ""), Options{AdminToken: "short"}); err == nil || !strings.Contains(err.Error(), "AdminToken") {
		t.Errorf("a 5-byte AdminToken: got %v, want an error naming AdminToken", err)
	}
}
