//go:build !wasip1

package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counterTranscripts are the conversations the counter service must hold;
// a WebAssembly build of it must hold them too.
var counterTranscripts = []servertest.Transcript{
	{
		Name: "count up and down",
		Script: []string{
			"a+",
			"a< new value: 0",
			"a< clients: 1",
			"a> increment",
			"a< new value: 1",
			"a> increment",
			"a< new value: 2",
			"a> decrement",
			"a< new value: 1",
			"a> decrement",
			"a> decrement",
			"a< new value: 0",
			"a< new value: -1",
		},
	},
	{
		Name: "shared by the room, separate per room",
		Script: []string{
			"a+",
			"a< new value: 0",
			"a< clients: 1",
			"a> increment",
			"a< new value: 1",
			"b+",
			"b< new value: 1",
			"a< clients: 2",
			"b< clients: 2",
			"b> increment",
			"a< new value: 2",
			"b< new value: 2",
			"a> something else",
			"a< new value: 2",
			"b< new value: 2",
			"c+ other",
			"c< new value: 0",
			"c< clients: 1",
			"b-",
			"a< clients: 1",
		},
	},
}

// Across a restart of the server onto the same store, each room keeps its
// value; its clients are counted afresh as they reconnect.
var (
	counterBeforeRestart = []string{
		"a+",
		"a< new value: 0",
		"a< clients: 1",
		"a> increment",
		"a< new value: 1",
		"a> increment",
		"a< new value: 2",
		"b+ other",
		"b< new value: 0",
		"b< clients: 1",
		"b> decrement",
		"b< new value: -1",
	}
	counterAfterRestart = []string{
		"a+",
		"a< new value: 2",
		"a< clients: 1",
		"a> increment",
		"a< new value: 3",
		"b+ other",
		"b< new value: -1",
		"b< clients: 1",
		"c+ new",
		"c< new value: 0",
		"c< clients: 1",
	}
)

func testCounter(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, counterTranscripts)
	t.Run("restart", func(t *testing.T) { testRestart(t, f) })
}

// testRestart plays counterBeforeRestart against a server, shuts it down
// (which saves every room) and plays counterAfterRestart against a new
// server on the same state file.
func testRestart(t *testing.T, f stateroom.Factory) {
	st, err := store.Open(filepath.Join(t.TempDir(), "rooms.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := server.Options{Store: st}
	// Each servertest.Run stops its server when its subtest ends.
	t.Run("before", func(t *testing.T) { servertest.Run(t, f, opts, counterBeforeRestart) })
	t.Run("after", func(t *testing.T) { servertest.Run(t, f, opts, counterAfterRestart) })
}

func TestCounter(t *testing.T) { testCounter(t, stateroom.New(NewCounter)) }

// TestCounterCountsWokenClients: a room woken from hibernation gets a new
// instance whose clients stayed connected without a Connect; its Init
// names them, and they count.
func TestCounterCountsWokenClients(t *testing.T) {
	// The room's two clients connected before it hibernated, so the
	// instance under test never saw their Connect.
	room := stateroomtest.NewRoom("r", stateroom.BaseService{})
	a, b := room.Connect(), room.Connect()
	woken := NewCounter("r")
	if err := woken.Restore([]byte("5")); err != nil {
		t.Fatal(err)
	}
	woken.Init(room, stateroom.InitEvent{Restored: true, Clients: []stateroom.ClientID{a, b}})
	woken.Disconnect(room, stateroom.DisconnectEvent{Client: b})
	if got := texts(room.Received(a)); !slices.Equal(got, []string{"clients: 1"}) {
		t.Fatalf("after waking with clients %v and %v leaving, a received %q; want [clients: 1]", []stateroom.ClientID{a, b}, b, got)
	}
}

// texts returns the payloads as strings.
func texts(ps []stateroom.Payload) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// TestCounterRestoreRefusesJunk: a snapshot that is not a number is an
// error (the runtime then sets it aside), not a counter at 0.
func TestCounterRestoreRefusesJunk(t *testing.T) {
	if err := NewCounter("r").Restore([]byte("twelve")); err == nil {
		t.Error("Restore accepted a snapshot that is not a number")
	}
}
