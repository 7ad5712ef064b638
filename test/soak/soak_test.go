package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom/test/internal/watchdog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestShortSoak runs the whole mix for a few seconds, so CI covers the soak
// program; the real run is `go run ./test/soak` (see docs/RELIABILITY.md).
//
// It runs in a child process killed after two minutes (it takes about
// 7 s): a wasm guest that nothing could stop would otherwise hang it until
// go test's timeout (see package watchdog).
func TestShortSoak(t *testing.T) {
	if !watchdog.InChild(t, 2*time.Minute) {
		return
	}
	var out bytes.Buffer
	err := run(context.Background(), config{
		Duration:           5 * time.Second,
		Report:             time.Second,
		Interval:           50 * time.Millisecond,
		Rooms:              2,
		Clients:            3,
		FaultyWorkers:      2,
		MaxRSSGrowthMiB:    256, // a short run under the race detector is all warm-up
		MaxGoroutineGrowth: 20,
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"healthy deliveries", "guest fault", "stalled reader", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := config{Duration: time.Second, Report: time.Second, Interval: time.Millisecond, Rooms: 1, Clients: 2}
	if err := good.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, bad := range []func(*config){
		func(c *config) { c.Duration = 0 },
		func(c *config) { c.Clients = 1 },
		func(c *config) { c.FaultyWorkers = -1 },
	} {
		c := good
		bad(&c)
		if err := c.validate(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
