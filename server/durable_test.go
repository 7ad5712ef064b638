package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/store"
)

// tally is a durable service: a count every message adds to, saved as
// decimal text. Restore fails on "fail" and reports an incompatible build on
// "other-build"; Init reports whether it was restored.
type tally struct {
	stateroom.BaseService
	n        int
	raw      string // when set, the snapshot instead of n
	restored bool
	timers   *atomic.Int32 // counts Timer calls across instances
}

func (c *tally) Init(r stateroom.Room, ev stateroom.InitEvent) { c.restored = ev.Restored }

func (c *tally) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("n=%d restored=%v", c.n, c.restored)))
}

func (c *tally) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	cmd, arg, _ := strings.Cut(ev.Payload.String(), ":")
	switch cmd {
	case "add":
		k, _ := strconv.Atoi(arg)
		c.n += k
	case "raw":
		c.raw = arg
	case "restored":
		r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("restored=%v", c.restored)))
		return
	case "timer":
		d, _ := time.ParseDuration(arg)
		r.SetTimer(d)
	}
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("n=%d", c.n)))
}

func (c *tally) Timer(r stateroom.Room, _ stateroom.TimerEvent) {
	c.timers.Add(1)
	c.n += 1000
}

func (c *tally) Snapshot() ([]byte, error) {
	if c.raw != "" {
		return []byte(c.raw), nil
	}
	return []byte(strconv.Itoa(c.n)), nil
}

func (c *tally) Restore(b []byte) error {
	switch string(b) {
	case "fail":
		return errors.New("cannot restore")
	case "other-build":
		return fmt.Errorf("raw memory of another build: %w", stateroom.ErrIncompatibleSnapshot)
	}
	n, err := strconv.Atoi(string(b))
	c.n = n
	return err
}

func tallyFactory(timers *atomic.Int32) stateroom.Factory {
	return stateroom.New(func(string) *tally { return &tally{timers: timers} })
}

// shutdown stops s within the test's patience and fails the test if it
// could not. It closes the clients first: a client that does not read would
// hold its connection for the close handshake's WriteTimeout.
func shutdown(t *testing.T, s *Server, clients ...*client.Conn) {
	t.Helper()
	for _, c := range clients {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestDurableAcrossRestart: a room's state survives the server's Shutdown
// into a new server on the same store (a bbolt file here, reopened as a
// restarted process would), and Init says it was restored.
func TestDurableAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var timers atomic.Int32
	open := func() *store.Bolt {
		st, err := store.Open(path, store.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	s1, ts1 := startServer(t, tallyFactory(&timers), Options{Store: st})
	c := dial(t, ts1, "/ws/d")
	expect(t, c, "n=0 restored=false")
	send(t, c, "add:5")
	expect(t, c, "n=5")
	send(t, c, "add:2")
	expect(t, c, "n=7")
	shutdown(t, s1, c)
	ts1.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open()
	t.Cleanup(func() { st.Close() })
	_, ts2 := startServer(t, tallyFactory(&timers), Options{Store: st})
	c2 := dial(t, ts2, "/ws/d")
	expect(t, c2, "n=7 restored=true")
	other := dial(t, ts2, "/ws/other")
	expect(t, other, "n=0 restored=false")
}

// TestCheckpointWithoutShutdown: a room with events is saved within the
// checkpoint interval while it runs, so a crash (a server that never shuts
// down) loses at most that much.
func TestCheckpointWithoutShutdown(t *testing.T) {
	st := store.NewMemory()
	var timers atomic.Int32
	_, ts := startServer(t, tallyFactory(&timers), Options{Store: st, CheckpointInterval: 20 * time.Millisecond})
	c := dial(t, ts, "/ws/cp")
	expect(t, c, "n=0 restored=false")
	send(t, c, "add:3")
	expect(t, c, "n=3")
	eventually(t, func() bool {
		_, err := st.Load(context.Background(), "cp")
		return err == nil
	}, "a checkpoint of room cp in the store")

	// A second server on the same store, as after a crash of the first,
	// restores the checkpoint.
	_, ts2 := startServer(t, tallyFactory(&timers), Options{Store: st})
	c2 := dial(t, ts2, "/ws/cp")
	expect(t, c2, "n=3 restored=true")
}

// TestBadSnapshots: a corrupt record and one whose Restore fails are set
// aside, never deleted, and the room starts fresh; a snapshot of an
// incompatible build starts the room fresh without setting it aside.
func TestBadSnapshots(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	var timers atomic.Int32
	// Records as a server would write them: through a first server.
	s1, ts1 := startServer(t, tallyFactory(&timers), Options{Store: st})
	var clients []*client.Conn
	for id, raw := range map[string]string{"corrupt": "1", "fails": "fail", "other": "other-build"} {
		c := dial(t, ts1, "/ws/"+id)
		expect(t, c, "n=0 restored=false")
		send(t, c, "raw:"+raw)
		expect(t, c, "n=0")
		clients = append(clients, c)
	}
	shutdown(t, s1, clients...)

	// Damage one below the service: truncate its envelope.
	rewrite := func(id string, f func([]byte) []byte) {
		rec, err := st.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Save(ctx, id, f(rec.Data), rec.Revision); err != nil {
			t.Fatal(err)
		}
	}
	rewrite("corrupt", func(b []byte) []byte { return b[:len(b)-3] })

	_, ts2 := startServer(t, tallyFactory(&timers), Options{Store: st})
	for _, id := range []string{"corrupt", "fails", "other"} {
		c := dial(t, ts2, "/ws/"+id)
		expect(t, c, "n=0 restored=false")
	}
	aside, err := st.ListSetAside(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rooms []string
	for _, a := range aside {
		rooms = append(rooms, a.Room)
	}
	if strings.Join(rooms, ",") != "corrupt,fails" {
		t.Fatalf("set aside: %v, want corrupt and fails (an incompatible build's snapshot is not damaged)", rooms)
	}
}

// TestTimerSurvivesRestart: a room saved with its timer pending is started
// by the next server at New, with no client, and its timer fires.
func TestTimerSurvivesRestart(t *testing.T) {
	st := store.NewMemory()
	var timers atomic.Int32
	s1, ts1 := startServer(t, tallyFactory(&timers), Options{Store: st})
	c := dial(t, ts1, "/ws/clock")
	expect(t, c, "n=0 restored=false")
	send(t, c, "timer:2s") // longer than the shutdown below can take on a loaded machine
	expect(t, c, "n=0")
	shutdown(t, s1, c)
	if n := timers.Load(); n != 0 {
		t.Fatalf("the timer fired %d times before the restart", n)
	}

	s2, _ := startServer(t, tallyFactory(&timers), Options{Store: st})
	eventually(t, func() bool { return timers.Load() == 1 }, "the saved timer to fire in the restarted server")
	if rs := s2.Rooms(); len(rs) != 1 || rs[0].ID != "clock" || rs[0].Clients != 0 {
		t.Fatalf("rooms after the restart: %+v, want room clock with no client", rs)
	}
}

// TestAdminState: GET /admin/state lists the saved rooms; DELETE
// /admin/state/{room} ends the room and deletes its state, so the next
// client starts it fresh; without a store both say there is none.
func TestAdminState(t *testing.T) {
	st := store.NewMemory()
	var timers atomic.Int32
	s, ts := startServer(t, tallyFactory(&timers), Options{Store: st, AdminToken: adminToken})
	c := dial(t, ts, "/ws/a%2Fb")
	expect(t, c, "n=0 restored=false")
	send(t, c, "add:4")
	expect(t, c, "n=4")
	c.Close()
	s.CloseRoom("a/b", 0, "") // its last save
	eventually(t, func() bool {
		status, body := adminDo(t, http.MethodGet, ts.URL+"/admin/state", adminToken)
		return status == http.StatusOK && strings.Contains(body, `"id": "a/b"`)
	}, "room a/b in GET /admin/state")

	c2 := dial(t, ts, "/ws/a%2Fb")
	expect(t, c2, "n=4 restored=true")
	if status, body := adminDo(t, http.MethodDelete, ts.URL+"/admin/state/a%2Fb", adminToken); status != http.StatusNoContent {
		t.Fatalf("DELETE /admin/state/a%%2Fb: HTTP %d %q", status, body)
	}
	expectClose(t, c2, stateroom.CloseRoomClosed, "room state deleted by an operator")
	if _, err := st.Load(context.Background(), "a/b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DELETE the store still has the room: %v", err)
	}
	c3 := dial(t, ts, "/ws/a%2Fb")
	expect(t, c3, "n=0 restored=false")

	_, plain := startServer(t, tallyFactory(&timers), Options{AdminToken: adminToken})
	if status, body := adminDo(t, http.MethodGet, plain.URL+"/admin/state", adminToken); status != http.StatusNotFound || !strings.Contains(body, "no room state") {
		t.Fatalf("GET /admin/state without a store: HTTP %d %q", status, body)
	}
}

// TestHibernation: an idle room of a Snapshotter drops its instance while
// its clients stay connected (the service's Close runs), and the next
// message wakes a fresh instance restored from the snapshot, whose Init
// says so, before the message is handled; a timer set before hibernation
// still fires, waking the room. Concurrent clients hammer wakes under -race.
func TestHibernation(t *testing.T) {
	var timers atomic.Int32
	var closes atomic.Int32
	f := stateroom.New(func(string) *closingTally { return &closingTally{tally: tally{timers: &timers}, closes: &closes} })
	s, ts := startServer(t, f, Options{HibernateAfter: 50 * time.Millisecond})
	a := dial(t, ts, "/ws/h")
	expect(t, a, "n=0 restored=false")
	b := dial(t, ts, "/ws/h")
	expect(t, b, "n=0 restored=false")
	send(t, a, "add:2")
	expect(t, a, "n=2")
	eventually(t, func() bool { return closes.Load() == 1 }, "the idle room to hibernate (its instance closed)")
	if rs := s.Rooms(); len(rs) != 1 || rs[0].Clients != 2 {
		t.Fatalf("a hibernated room keeps its clients: %+v", rs)
	}

	// Both clients talk at once: one wake, every message handled in order.
	done := make(chan error, 2)
	for _, c := range []*client.Conn{a, b} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for range 20 {
				if err := c.Send(ctx, stateroom.Text("add:1")); err != nil {
					done <- err
					return
				}
			}
			for range 20 { // every message handled: one reply each
				if _, err := recv(c); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	send(t, a, "add:0")
	expect(t, a, "n=42")
	// Asleep again, then the timer wakes it with no message.
	send(t, a, "timer:300ms")
	eventually(t, func() bool { return closes.Load() >= 2 }, "the room to hibernate again")
	eventually(t, func() bool { return timers.Load() == 1 }, "the timer set before hibernation to fire")
	send(t, b, "restored")
	expect(t, b, "restored=true") // the woken instance's Init was told
	send(t, b, "add:0")
	expect(t, b, "n=1042")
}

// closingTally is a tally that counts its instances' Close calls: a
// hibernating room closes its instance.
type closingTally struct {
	tally
	closes *atomic.Int32
}

func (c *closingTally) Close() error { c.closes.Add(1); return nil }
