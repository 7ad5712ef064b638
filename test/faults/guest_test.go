package faults_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
	"github.com/stateroom-go/stateroom/test/internal/watchdog"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// guestBudget is the event budget of the guests in TestGuestFaults: every
// room's, the bystanders' included. A healthy event of the relay guest
// takes microseconds, so a budget this wide holds on a loaded machine too,
// and only the deliberate infinite loop runs past it.
const guestBudget = time.Second

// guestLimit is how long any call into a guest may run before the test
// stops trusting the budget: about ten budgets (see package watchdog).
const guestLimit = 10 * guestBudget

// guestDeadline bounds the whole of TestGuestFaults, which runs in a child
// process: the watchdog's limit, and time for the rest of the test on a
// loaded machine. It takes about 2 s.
const guestDeadline = guestLimit + 20*time.Second

// TestGuestFaults: each way a WebAssembly guest can fault (a trap, an
// infinite loop past the event budget, memory growth past the cap,
// proc_exit, a malformed stateroom_send) closes the clients of its room
// with 1011 and a reason naming the fault; a room of the same module on
// the same server keeps working throughout; and the next connection to the
// faulted room's id gets a fresh, working instance. The guest is wasmhost's
// relay test guest (testdata/relay.wat, copied from wasmhost/testdata with
// its .wasm).
//
// Were the budget broken, the infinite loop would never return, and the
// process would hang at the Go runtime's next stop-the-world until go
// test's timeout. Instead the watchdog fails the test within guestLimit, or
// when nothing in the process can stop the guest, the test's child process
// is killed at guestDeadline (see package watchdog).
func TestGuestFaults(t *testing.T) {
	if !watchdog.InChild(t, guestDeadline) {
		return
	}
	checkLeaks(t)
	mod, err := wasmhost.Load(context.Background(), "testdata/relay.wasm", wasmhost.Options{
		EventBudget:  guestBudget,
		MemoryLimit:  1 << 20,
		DisableCache: true,
		Logger:       quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	var overran atomic.Bool
	guarded := watchdog.Factory(mod, watchdog.Options{
		Limit:   guestLimit,
		Overrun: func(err error) { overran.Store(true); t.Error(err) },
		Stop:    func() { mod.Close(context.Background()) },
	})
	e := serve(t, guarded, server.Options{})
	ctx := testContext(t)

	bystanders, err := wsclient.JoinGroup(ctx, e.url("bystander"), 2, wsclient.GroupOptions{Unwrap: wsclient.RelayGuestText})
	if err != nil {
		t.Fatal(err)
	}
	defer bystanders.Close()

	text := func(s string) wsclient.Frame { return wsclient.Message(wsclient.OpText, []byte(s)) }
	for _, c := range []struct {
		name   string
		fault  wsclient.Frame
		reason string // a word the close reason must hold
	}{
		{"trap", text("t"), "trap"},
		{"infinite loop", text("l"), "budget"},
		{"memory past the cap", text("g"), "memory"},
		{"proc_exit", text("x"), "exit"},
		{"send out of bounds", text("o"), "send"},
		{"send with a bad tag", wsclient.Message(wsclient.OpBinary, []byte{7, 0, 0, 0}), "send"},
	} {
		if overran.Load() {
			t.Fatal("the watchdog closed the module: the cases left cannot run")
		}
		t.Run(c.name, func(t *testing.T) {
			url := e.url("victim-" + c.name)
			sendAll(t, bystanders)
			closed, err := wsclient.FaultGuest(ctx, url, 2, c.fault, func() { sendAll(t, bystanders) })
			if err != nil {
				t.Fatal(err)
			}
			for i, cl := range closed {
				if cl.Code != stateroom.CloseServiceFault || !strings.Contains(cl.Reason, c.reason) {
					t.Errorf("client %d closed with %d %q; want %d (CloseServiceFault) and a reason saying %q", i, cl.Code, cl.Reason, stateroom.CloseServiceFault, c.reason)
				}
			}
			t.Logf("closed with %d %q", closed[0].Code, closed[0].Reason)
			if err := bystanders.WaitDelivered(ctx); err != nil {
				t.Fatalf("the other room: %v", err)
			}
			// A fresh instance: the room starts over and relays again.
			if err := wsclient.CheckFreshGuest(ctx, url); err != nil {
				t.Fatal(err)
			}
		})
	}
}
