//go:build !wasip1

package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// hogBudget is the event budget of TestCPUHogWasm. Every call into the
// guest runs under it, the healthy ones too: starting the instance (the Go
// runtime's initialization) and Init take milliseconds, so a second leaves
// them a wide margin on a loaded machine, while the 10 s spin of Connect
// runs ten times past it.
const hogBudget = time.Second

// TestCPUHogWasm runs the module, which spins 10 s per connection, under
// hogBudget: wasmhost stops the guest, the room's client is closed with
// 1011 and the budget as reason, and the next connection to that room gets
// a fresh instance (stopped in turn) instead of a stuck room.
func TestCPUHogWasm(t *testing.T) {
	url := serve(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{EventBudget: hogBudget}))
	for i := range 2 {
		c := dial(t, url+"/ws/hog")
		// Under the 10 s spin, so only the budget can end the call in
		// time; had the spin run to its end, the client would get "spun
		// N rounds" instead of a close anyway.
		msg, err := next(c, DefaultSpin-hogBudget)
		ce, ok := errors.AsType[*client.CloseError](err)
		if !ok {
			t.Fatalf("connection %d: got %q, %v; want the room closed with code %d", i, msg.Data, err, stateroom.CloseServiceFault)
		}
		if code := ce.Code; code != stateroom.CloseServiceFault || !strings.Contains(ce.Reason, "budget") {
			t.Errorf("connection %d closed with %d %q, want %d and a reason naming the budget", i, code, ce.Reason, stateroom.CloseServiceFault)
		}
	}
}
