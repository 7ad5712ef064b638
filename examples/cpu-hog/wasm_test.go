//go:build !wasip1

package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestCPUHogWasm runs the module, which spins 10 s per connection, under a
// 200 ms event budget: wasmhost stops the guest, the room's client is closed
// with 1011 and the budget as reason, and the next connection to that room
// gets a fresh instance (stopped in turn) instead of a stuck room.
func TestCPUHogWasm(t *testing.T) {
	url := serve(t, gobuildtest.Factory(t, gobuildtest.Module(t, ".", ""), wasmhost.Options{EventBudget: 200 * time.Millisecond}))
	for i := range 2 {
		c := dial(t, url+"/ws/hog")
		// Well under the 10 s spin: only the budget can end the call in time.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, msg, err := c.Read(ctx)
		cancel()
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection %d: got %q, %v; want the room closed with code %d", i, msg, err, stateroom.CloseServiceFault)
		}
		if ce.Code != stateroom.CloseServiceFault || !strings.Contains(ce.Reason, "budget") {
			t.Errorf("connection %d closed with %d %q, want %d and a reason naming the budget", i, ce.Code, ce.Reason, stateroom.CloseServiceFault)
		}
	}
}
