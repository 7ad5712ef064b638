package loadgen

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestChurn(t *testing.T) {
	for _, rl := range relays {
		t.Run(rl.name, func(t *testing.T) { testChurn(t, rl.start(t)) })
	}
}

func testChurn(t *testing.T, url string) {
	o := Options{URL: url, Rooms: 40, Concurrency: 4, ServerPID: os.Getpid()}
	rep, err := Churn(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RoomsDone != 40 || rep.TimedOut || rep.Foreign != 0 {
		t.Errorf("rooms done %d timed out %v foreign %d; want 40, false, 0", rep.RoomsDone, rep.TimedOut, rep.Foreign)
	}
	if rep.FirstReply == nil || rep.FirstReply.Count != 40 || rep.FirstReply.P50 <= 0 || rep.RoomsPerSec <= 0 {
		t.Errorf("first reply %+v rooms/s %v; want 40 samples and a rate", rep.FirstReply, rep.RoomsPerSec)
	}
	if rep.ServerSysCPU < 0 || rep.ServerSysCPU > rep.ServerCPU {
		t.Errorf("server system CPU %v s of %v s in all; want a part of it", rep.ServerSysCPU, rep.ServerCPU)
	}
}

// TestChurnSilent: a server that never answers makes churn fail within
// its Duration, not hang.
func TestChurnSilent(t *testing.T) {
	start := time.Now()
	rep, err := Churn(context.Background(), Options{URL: startFaulty(t, faultSilent), Rooms: 3, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Churn: %v; a time bound is not an error", err)
	}
	if !rep.TimedOut || rep.RoomsDone != 0 {
		t.Errorf("timed out %v rooms done %d; want true, 0", rep.TimedOut, rep.RoomsDone)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Churn took %v with a 300ms Duration", d)
	}
}
