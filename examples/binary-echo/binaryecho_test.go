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

// binaryEchoTranscripts are the conversations the binary echo service must
// hold; a WebAssembly build of it must hold them too.
var binaryEchoTranscripts = []servertest.Transcript{
	{
		Name: "binary stays binary, text stays text",
		Script: []string{
			"a+",
			"a>> 00ff10",
			"a<< 00ff10",
			"a> plain text",
			"a< plain text",
			"a>> ",
			"a<< ",
		},
	},
	{
		Name: "only to the sender",
		Script: []string{
			"a+",
			"b+",
			"a>> 01",
			"b>> 02",
			"b<< 02",
			"a<< 01",
		},
	},
}

func testBinaryEcho(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, binaryEchoTranscripts)
}

func TestBinaryEcho(t *testing.T) { testBinaryEcho(t, stateroom.New(NewBinaryEcho)) }
