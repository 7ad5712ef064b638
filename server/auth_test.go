package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// whoami greets each client with the identity Authenticate gave it, and
// logs the identity again on Disconnect.
type whoami struct {
	stateroom.BaseService
	log *eventLog
}

func (w whoami) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("you are %v (event: %v)", ClientIdentity(r, ev.Client), ev.Identity)))
}

func (w whoami) Disconnect(r stateroom.Room, ev stateroom.DisconnectEvent) {
	w.log.add("bye %v", ClientIdentity(r, ev.Client))
}

func TestAuthenticate(t *testing.T) {
	var log eventLog
	opts := Options{Authenticate: func(r *http.Request, roomID string) (any, error) {
		log.add("auth for room %s", roomID)
		switch user := r.Header.Get("X-User"); user {
		case "":
			return nil, errors.New("log in first: send X-User")
		case "mallory":
			return nil, fmt.Errorf("%w: mallory may not enter %s", ErrForbidden, roomID)
		default:
			return user, nil
		}
	}}
	_, ts := startServer(t, stateroom.New(func(string) whoami { return whoami{log: &log} }), opts)

	expectRefused(t, ts, "/ws/vault", nil, http.StatusUnauthorized, "log in first")
	expectRefused(t, ts, "/ws/vault", http.Header{"X-User": {"mallory"}}, http.StatusForbidden, "mallory may not enter vault")

	c, err := dialWith(t, ts, "/ws/vault", http.Header{"X-User": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, c, "you are alice (event: alice)")
	if n := log.count("auth for room vault"); n != 3 {
		t.Errorf("Authenticate ran %d times for room vault, want 3; log: %q", n, log.snapshot())
	}
	c.Close()
	log.waitFor(t, "bye alice")
}

func TestClientToken(t *testing.T) {
	const secret = "open sesame"
	_, ts := startServer(t, probeFactory(&eventLog{}, ""), Options{ClientToken: secret})

	expectRefused(t, ts, "/ws/a", nil, http.StatusUnauthorized, "Options.ClientToken")
	expectRefused(t, ts, "/ws/a?auth=open", nil, http.StatusUnauthorized, "?auth=TOKEN")
	expectRefused(t, ts, "/ws/a", http.Header{"Authorization": {"Bearer wrong"}}, http.StatusUnauthorized, "Authorization: Bearer")

	c := dial(t, ts, "/ws/a?auth=open%20sesame")
	expectPrefix(t, c, "hello 1 room=a")
	c2, err := dialWith(t, ts, "/ws/a", http.Header{"Authorization": {"Bearer " + secret}})
	if err != nil {
		t.Fatal(err)
	}
	expectPrefix(t, c2, "hello 2 room=a")
}

func TestClientIdentityOutsideServer(t *testing.T) {
	if id := ClientIdentity(nil, 1); id != nil {
		t.Errorf("ClientIdentity of a nil room = %v, want nil", id)
	}
}
