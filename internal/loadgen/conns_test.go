package loadgen

import (
	"context"
	"os"
	"testing"
	"time"
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
}

func TestConnsBadPID(t *testing.T) {
	_, err := Conns(context.Background(), Options{URL: startHub(t), Conns: 1, ServerPID: 1 << 30})
	if err == nil {
		t.Fatal("Conns with a pid that does not exist succeeded")
	}
}
