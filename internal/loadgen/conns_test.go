package loadgen

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
)

// TestConns opens idle connections to a relay served in this process,
// so the test process is the "server" whose memory is read.
func TestConns(t *testing.T) {
	for _, rl := range relays {
		t.Run(rl.name, func(t *testing.T) { testConns(t, rl.start(t)) })
	}
}

func testConns(t *testing.T, url string) {
	o := Options{URL: url, Rooms: 3, Conns: 60, Concurrency: 8, Hold: 50 * time.Millisecond, ServerPID: os.Getpid()}
	rep, err := Conns(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conns != 60 || rep.Rooms != 3 || rep.TimedOut {
		t.Errorf("conns %d rooms %d timed out %v; want 60, 3, false", rep.Conns, rep.Rooms, rep.TimedOut)
	}
	if rep.ConnsPerSec <= 0 || rep.RSSBefore <= 0 || rep.RSSOpen <= 0 || rep.RSSAfter <= 0 {
		t.Errorf("report %+v; want a setup rate and three RSS readings", rep)
	}
	if want := float64(rep.RSSOpen-rep.RSSBefore) / 60; rep.RSSPerConn != want {
		t.Errorf("RSSPerConn %v, want (open-before)/conns = %v", rep.RSSPerConn, want)
	}
	// A relay says nothing on connect: the latency ends at the handshake,
	// and the first connection's vain wait for a message is no part of
	// the setup time.
	if rep.ConnectTo != ConnectToHandshake || rep.Connect == nil || rep.Connect.Count != 60 {
		t.Fatalf("connect latency %+v to %q; want 60 samples to %q", rep.Connect, rep.ConnectTo, ConnectToHandshake)
	}
	if l := rep.Connect; l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max || l.Max >= float64(greetWait/time.Microsecond) {
		t.Errorf("connect latency %+v; want 0 < p50 <= p90 <= p99 <= max < the greeting wait (%v)", l, greetWait)
	}
	if rep.Handshake != nil {
		t.Errorf("handshake latency %+v reported apart; want it only when the connect latency ends at a reply", rep.Handshake)
	}
	if rep.Elapsed >= greetWait.Seconds() {
		t.Errorf("setup took %.3f s; the first connection's wait for a greeting (%v) was counted", rep.Elapsed, greetWait)
	}
}

// greeter sends its client a message on connect after a pause, as the
// counter example sends its value (without the pause).
type greeter struct {
	stateroom.BaseService
}

// greetDelay is how long greeter takes in Connect: a connect latency that
// ends at the first reply is at least this, one that ends at the
// handshake well under it (the handshake completes before Connect runs).
const greetDelay = 25 * time.Millisecond

func (greeter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	time.Sleep(greetDelay)
	room.Send(stateroom.To(ev.Client), stateroom.Text("hello"))
}

// TestConnsFirstReply measures connects to a service that greets, through
// a real server: the latency runs to the greeting, every connection's.
func TestConnsFirstReply(t *testing.T) {
	opts := relay.Unlimited(server.Options{RoomGracePeriod: server.EndRoomsImmediately, Logger: slog.New(slog.DiscardHandler)})
	url := servertest.Start(t, stateroom.New(func(string) greeter { return greeter{} }), opts) + "/ws"
	rep, err := Conns(context.Background(), Options{URL: url, Rooms: 12, Conns: 12, Concurrency: 4, Hold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conns != 12 || rep.ConnectTo != ConnectToFirstReply || rep.Connect == nil || rep.Connect.Count != 12 {
		t.Fatalf("%d connections, latency %+v to %q; want 12, 12 samples to %q", rep.Conns, rep.Connect, rep.ConnectTo, ConnectToFirstReply)
	}
	if min := float64(greetDelay / time.Microsecond); rep.Connect.P50 < min || rep.Connect.Max < rep.Connect.P99 {
		t.Errorf("connect latency %+v; want p50 at least the service's Connect (%v), max >= p99", rep.Connect, greetDelay)
	}
	// The handshake completes before Connect runs: well under the pause.
	if h := rep.Handshake; h == nil || h.Count != 12 || h.P50 >= float64(greetDelay/time.Microsecond) {
		t.Errorf("handshake latency %+v; want 12 samples, p50 under the service's Connect (%v)", h, greetDelay)
	}
}

// firstGreeter greets only the first client of its room, as a lobby that
// welcomes its host might.
type firstGreeter struct {
	stateroom.BaseService
	greeted *bool
}

func (g firstGreeter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	if !*g.greeted {
		*g.greeted = true
		room.Send(stateroom.To(ev.Client), stateroom.Text("welcome"))
	}
}

// TestConnsGreetsOnlyFirstClients: against a service that greets only a
// room's first client, the run completes: the connections that created
// their rooms are measured to the greeting, the joiners are counted as
// ungreeted and measured to the handshake only. A Duration shorter than
// the first connection's wait for a greeting (the relay greets nobody)
// still bounds only the connecting.
func TestConnsGreetsOnlyFirstClients(t *testing.T) {
	opts := relay.Unlimited(server.Options{RoomGracePeriod: server.EndRoomsImmediately, Logger: slog.New(slog.DiscardHandler)})
	url := servertest.Start(t, stateroom.New(func(string) firstGreeter { return firstGreeter{greeted: new(bool)} }), opts) + "/ws"
	rep, err := Conns(context.Background(), Options{URL: url, Rooms: 2, Conns: 6, Concurrency: 4, Hold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conns != 6 || rep.ConnectTo != ConnectToFirstReply || rep.Connect == nil || rep.Connect.Count != 2 || rep.Ungreeted != 4 ||
		rep.Handshake == nil || rep.Handshake.Count != 6 {
		t.Fatalf("%d connections, %d ungreeted, connect %+v to %q, handshake %+v; want 6, 4 ungreeted, 2 samples to %q, 6 handshakes",
			rep.Conns, rep.Ungreeted, rep.Connect, rep.ConnectTo, rep.Handshake, ConnectToFirstReply)
	}

	silent := servertest.Start(t, relay.Factory(), opts) + "/ws"
	rep, err = Conns(context.Background(), Options{URL: silent, Rooms: 4, Conns: 4, Concurrency: 2, Duration: 800 * time.Millisecond, Hold: 10 * time.Millisecond})
	if err != nil || rep.TimedOut || rep.Conns != 4 || rep.ConnectTo != ConnectToHandshake {
		t.Fatalf("a silent service with --duration 0.8s: %+v, %v; want 4 connections to the handshake, not timed out by the 1 s wait for a greeting", rep, err)
	}
}

func TestConnsBadPID(t *testing.T) {
	_, err := Conns(context.Background(), Options{URL: startHub(t), Conns: 1, ServerPID: 1 << 30})
	if err == nil {
		t.Fatal("Conns with a pid that does not exist succeeded")
	}
}
