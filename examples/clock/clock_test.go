//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clockTranscripts are the conversations the clock service must hold; a
// WebAssembly build of it must hold them too.
var clockTranscripts = []servertest.Transcript{
	{
		Name: "ticks count from zero for everyone",
		Script: []string{
			"a+",
			"b+",
			"a< Timer @ 0",
			"b< Timer @ 0",
			"a< Timer @ 1",
			"b< Timer @ 1",
			"a< Timer @ 2",
			"b< Timer @ 2",
		},
	},
}

func testClock(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, clockTranscripts)
}

// TestClock runs the clock fast; TestClockPeriod checks the real period.
func TestClock(t *testing.T) {
	testClock(t, stateroom.New(func(string) *Clock { return &Clock{Period: 200 * time.Millisecond} }))
}

func TestClockPeriod(t *testing.T) {
	if c := NewClock("r"); c.Period != 4*time.Second {
		t.Fatalf("NewClock period is %v, want 4s as upstream", c.Period)
	}
}
