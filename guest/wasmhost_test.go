//go:build !wasip1

package guest_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// hostService starts the probe module under wasmhost for roomID; the
// module and the service are closed when the test ends.
func hostService(t *testing.T, roomID string, opts wasmhost.Options) stateroom.Service {
	t.Helper()
	svc, _ := hostModuleService(t, roomID, opts)
	return svc
}

// hostModuleService is hostService that also returns the module.
func hostModuleService(t *testing.T, roomID string, opts wasmhost.Options) (stateroom.Service, *wasmhost.Module) {
	t.Helper()
	probeModule(t) // builds probeBytes once
	ctx := context.Background()
	opts.DisableCache = true
	opts.Logger = slog.New(slog.DiscardHandler) // faults are what some tests expect
	m, err := wasmhost.Compile(ctx, probeBytes, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	svc, err := m.NewService(roomID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.(interface{ Close() error }).Close() })
	return svc, m
}

// TestRoomIDThroughWasmhost checks the two halves of the room-id handshake
// together: our host writes the room id through malloc/free at start, as
// upstream's does, and the guest SDK hands it to the service's factory and
// Room.ID.
func TestRoomIDThroughWasmhost(t *testing.T) {
	svc := hostService(t, "room/9", wasmhost.Options{})
	room := stateroomtest.NewRoom("room/9", svc)
	id := room.Connect()
	if got := room.Received(id); len(got) != 1 || got[0].String() != "room:room/9:room/9" {
		t.Fatalf("client %d received %q, want one %q", id, got, "room:room/9:room/9")
	}
	if len(room.Sent) != 1 {
		t.Fatalf("sent %+v, want the one reply", room.Sent)
	}
}

// TestCloseThroughWasmhost drives Room.Close through the whole path: the
// guest SDK encodes the ABI's Close extension, wasmhost decodes it and
// closes the client in the room, which then delivers the client's
// Disconnect back into the module. A code a service may not use is refused
// inside the guest and never reaches the room.
func TestCloseThroughWasmhost(t *testing.T) {
	svc := hostService(t, "r", wasmhost.Options{})
	room := stateroomtest.NewRoom("r", svc)
	a, b := room.Connect(), room.Connect()
	room.TakeSent()

	room.Message(a, stateroom.Text("close 2 1011 not mine"))
	if len(room.Closed) != 0 {
		t.Fatalf("a close with code 1011 reached the room: %+v", room.Closed)
	}
	if got := room.Received(a); len(got) != 1 || got[0].String() != "close refused: "+stateroom.CheckServiceClose(1011).Error() {
		t.Fatalf("client %d received %q, want the refusal", a, got)
	}
	room.TakeSent()

	room.Message(a, stateroom.Text("close 2 4100 bye now"))
	want := []stateroomtest.Closed{{Client: b, Code: 4100, Reason: "bye now"}}
	if !slices.Equal(room.Closed, want) {
		t.Fatalf("closed %+v, want %+v", room.Closed, want)
	}
	if got := room.Clients(); !slices.Equal(got, []stateroom.ClientID{a}) {
		t.Errorf("clients %v after the close, want [%d]", got, a)
	}
	// The Disconnect the room delivered after the event reached the guest.
	if got := room.Received(a); len(got) != 1 || got[0].String() != "left 2" {
		t.Errorf("client %d received %q, want %q", a, got, "left 2")
	}
}

// TestSleepWithinBudget: time.Sleep in a Go guest (WASI poll_oneoff with a
// relative clock) cannot hold its room past the event budget: a 20 s sleep
// under a 300 ms budget faults the room with the budget's reason within
// about the budget. A short sleep still sleeps its whole duration.
func TestSleepWithinBudget(t *testing.T) {
	const budget = 300 * time.Millisecond
	svc, m := hostModuleService(t, "r", wasmhost.Options{EventBudget: budget})
	room := stateroomtest.NewRoom("r", svc)
	id := room.Connect()
	room.TakeSent()

	start := time.Now()
	room.Message(id, stateroom.Text("sleep 50"))
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("a 50 ms sleep returned after %v", took)
	}
	if got := room.Received(id); len(got) != 1 || got[0].String() != "slept" {
		t.Errorf("client %d received %q after the short sleep, want %q", id, got, "slept")
	}

	start = time.Now()
	fault := make(chan any, 1)
	go func() {
		defer func() { fault <- recover() }()
		svc.Message(room, stateroom.MessageEvent{Client: id, Payload: stateroom.Text("sleep 20000")})
	}()
	select {
	case v := <-fault:
		f, ok := v.(*stateroom.Fault)
		if !ok || f.Reason != "wasm event budget exceeded" {
			t.Fatalf("the sleeping event ended with %v, want the budget's fault", v)
		}
		if took := time.Since(start); took > 10*budget {
			t.Errorf("the budget stopped a sleeping guest after %v, budget %v", took, budget)
		}
	case <-time.After(10 * budget):
		m.Close(context.Background()) // stops the sleep, if that works
		t.Fatalf("a guest sleeping 20 s still runs %v into a %v budget: sleeps escape the budget", 10*budget, budget)
	}
}
