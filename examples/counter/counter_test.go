//go:build !wasip1

package main

import (
	"path/filepath"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
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
			"a> increment",
			"a< new value: 1",
			"b+",
			"b< new value: 1",
			"b> increment",
			"a< new value: 2",
			"b< new value: 2",
			"a> something else",
			"a< new value: 2",
			"b< new value: 2",
			"c+ other",
			"c< new value: 0",
		},
	},
}

// Across a restart of the server onto the same store, each room keeps its
// value.
var (
	counterBeforeRestart = []string{
		"a+",
		"a< new value: 0",
		"a> increment",
		"a< new value: 1",
		"a> increment",
		"a< new value: 2",
		"b+ other",
		"b< new value: 0",
		"b> decrement",
		"b< new value: -1",
	}
	counterAfterRestart = []string{
		"a+",
		"a< new value: 2",
		"a> increment",
		"a< new value: 3",
		"b+ other",
		"b< new value: -1",
		"c+ new",
		"c< new value: 0",
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

// TestCounterRestoreRefusesJunk: a snapshot that is not a number is an
// error (the runtime then sets it aside), not a counter at 0.
func TestCounterRestoreRefusesJunk(t *testing.T) {
	if err := NewCounter("r").Restore([]byte("twelve")); err == nil {
		t.Error("Restore accepted a snapshot that is not a number")
	}
}
