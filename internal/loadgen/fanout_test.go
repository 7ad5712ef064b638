package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// checkFanout checks the counts of a clean fanout run exactly.
func checkFanout(t *testing.T, rep *Report, o Options) {
	t.Helper()
	sent := int64(o.Rooms * o.Senders * o.Messages)
	want := sent * int64(o.Clients)
	if rep.Sent != sent || rep.Expected != want || rep.Delivered != want {
		t.Errorf("sent %d expected %d delivered %d; want %d, %d, %d", rep.Sent, rep.Expected, rep.Delivered, sent, want, want)
	}
	if rep.Lost != 0 || rep.Duplicates != 0 || rep.Reordered != 0 || rep.Foreign != 0 || rep.TimedOut {
		t.Errorf("lost %d dups %d reordered %d foreign %d timed out %v; want a clean run", rep.Lost, rep.Duplicates, rep.Reordered, rep.Foreign, rep.TimedOut)
	}
	if rep.RTT == nil || rep.RTT.Count != uint64(sent) {
		t.Errorf("RTT %+v; want %d samples, one per message", rep.RTT, sent)
	} else if !(0 < rep.RTT.P50 && rep.RTT.P50 <= rep.RTT.P90 && rep.RTT.P90 <= rep.RTT.P99 && rep.RTT.P99 <= rep.RTT.Max) {
		t.Errorf("RTT quantiles not ordered: %+v", rep.RTT)
	}
	if rep.FramesPerSec <= 0 || rep.Elapsed <= 0 || rep.ToolCPU <= 0 {
		t.Errorf("frames/s %v elapsed %v tool CPU %v; want positive", rep.FramesPerSec, rep.Elapsed, rep.ToolCPU)
	}
}

func TestFanout(t *testing.T) {
	for _, rl := range relays {
		t.Run(rl.name, func(t *testing.T) {
			url := rl.start(t)
			for _, o := range []Options{
				{Rooms: 1, Clients: 5, Senders: 2, Window: 4, Messages: 200},
				{Rooms: 4, Clients: 3, Senders: 3, Window: 1, Messages: 50, Size: 300},
			} {
				o.URL = url
				o.Duration = 30 * time.Second
				rep, err := Fanout(context.Background(), o)
				if err != nil {
					t.Fatalf("Fanout(%+v): %v", o, err)
				}
				checkFanout(t, rep, o)
			}
		})
	}
}

// TestFanoutCatchesFaults: a relay that drops, duplicates or reorders one
// message per receiving client must fail the check with exact counts.
func TestFanoutCatchesFaults(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		fault                fault
		lost, dups, reorders int64
	}{
		{"drop", faultDrop, 2, 0, 0},
		{"duplicate", faultDup, 0, 2, 0},
		{"reorder", faultReorder, 0, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{URL: startFaulty(t, tc.fault), Rooms: 1, Clients: 3, Senders: 1, Window: 1, Messages: 10, Duration: 20 * time.Second, StallTimeout: 300 * time.Millisecond}
			rep, err := Fanout(context.Background(), o)
			if !errors.Is(err, ErrDelivery) {
				t.Fatalf("Fanout error = %v; want ErrDelivery", err)
			}
			if rep.Lost != tc.lost || rep.Duplicates != tc.dups || rep.Reordered != tc.reorders {
				t.Errorf("lost %d dups %d reordered %d; want %d %d %d", rep.Lost, rep.Duplicates, rep.Reordered, tc.lost, tc.dups, tc.reorders)
			}
			if want := 30 + tc.dups - tc.lost; rep.Delivered != want {
				t.Errorf("delivered %d, want %d", rep.Delivered, want)
			}
			// Only a loss leaves the run waiting for deliveries until the
			// stall timeout ends it.
			if lossy := tc.lost != 0; rep.Stalled != lossy || rep.TimedOut != lossy {
				t.Errorf("stalled %v timed out %v; want both %v", rep.Stalled, rep.TimedOut, lossy)
			}
		})
	}
}

func TestFanoutBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{URL: "http://127.0.0.1:1/ws"},
		{URL: "ws://127.0.0.1:1/ws?x=1"},
		{URL: "ws:///ws"},
		{URL: "ws://127.0.0.1:1/ws", Clients: 2, Senders: 3},
		{URL: "ws://127.0.0.1:1/ws", Size: 8},
		{URL: "ws://127.0.0.1:1/ws", Window: -1},
		{URL: "ws://127.0.0.1:1/ws", Duration: -time.Second},
	} {
		if _, err := Fanout(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("Fanout(%+v) error = %v; want ErrOptions", o, err)
		}
	}
}

// TestFanoutNotARelay: a refused upgrade, or a server that does not relay,
// gives an error that says what is wrong, within the bounds.
func TestFanoutNotARelay(t *testing.T) {
	url := strings.TrimSuffix(startHub(t), "/ws") + "/nothing" // the hub answers 404 here
	_, err := Fanout(context.Background(), Options{URL: url, Clients: 2, Duration: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Errorf("Fanout against a 404: error %v; want one naming %s", err, url)
	}
	start := time.Now()
	_, err = Fanout(context.Background(), Options{URL: startFaulty(t, faultSilent), Clients: 2, Duration: 5 * time.Second, StallTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "is the server a relay") {
		t.Errorf("Fanout against a silent server: error %v; want one asking whether it is a relay", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("Fanout against a silent server took %v; StallTimeout is 200ms", time.Since(start))
	}
}

// TestFanoutOptionsNotMutated: defaults are filled in a copy.
func TestFanoutOptionsNotMutated(t *testing.T) {
	o := Options{URL: "ws://127.0.0.1:1/ws"}
	d, err := o.withDefaults("fanout")
	if err != nil {
		t.Fatal(err)
	}
	if o.Clients != 0 || o.RoomPrefix != "" || d.Clients != 50 || d.Rooms != 1 || d.Window != 16 {
		t.Errorf("withDefaults: caller's %+v, copy %+v", o, d)
	}
}
