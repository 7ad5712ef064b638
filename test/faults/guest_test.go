package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestGuestFaults: each way a WebAssembly guest can fault (a trap, an
// infinite loop past the event budget, memory growth past the cap,
// proc_exit, a malformed stateroom_send) closes the clients of its room
// with 1011; a room of the same module on the same server keeps working
// throughout; and the next connection to the faulted room's id gets a
// fresh, working instance. The guest is wasmhost's relay test guest
// (testdata/relay.wat, copied from wasmhost/testdata with its .wasm).
func TestGuestFaults(t *testing.T) {
	checkLeaks(t)
	mod, err := wasmhost.Load(context.Background(), "testdata/relay.wasm", wasmhost.Options{
		EventBudget:  100 * time.Millisecond,
		MemoryLimit:  1 << 20,
		DisableCache: true,
		Logger:       quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	e := serve(t, mod, server.Options{})
	ctx := testContext(t)

	bystanders, err := wsclient.JoinGroup(ctx, e.url("bystander"), 2, wsclient.GroupOptions{Unwrap: wsclient.RelayGuestText})
	if err != nil {
		t.Fatal(err)
	}
	defer bystanders.Close()

	text := func(s string) wsclient.Frame { return wsclient.Message(wsclient.OpText, []byte(s)) }
	for _, c := range []struct {
		name  string
		fault wsclient.Frame
	}{
		{"trap", text("t")},
		{"infinite loop", text("l")},
		{"memory past the cap", text("g")},
		{"proc_exit", text("x")},
		{"send out of bounds", text("o")},
		{"send with a bad tag", wsclient.Message(wsclient.OpBinary, []byte{7, 0, 0, 0})},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := e.url("victim-" + c.name)
			sendAll(t, bystanders)
			closed, err := wsclient.FaultGuest(ctx, url, 2, c.fault, func() { sendAll(t, bystanders) })
			if err != nil {
				t.Fatal(err)
			}
			for i, cl := range closed {
				if cl.Code != stateroom.CloseServiceFault || cl.Reason == "" {
					t.Errorf("client %d closed with %d %q; want %d (CloseServiceFault) and a reason", i, cl.Code, cl.Reason, stateroom.CloseServiceFault)
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
