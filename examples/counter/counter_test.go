//go:build !wasip1

package main

import (
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
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

func testCounter(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, counterTranscripts)
}

func TestCounter(t *testing.T) { testCounter(t, stateroom.New(NewCounter)) }
