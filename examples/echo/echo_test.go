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

// echoTranscripts are the conversations the echo service must hold; a
// WebAssembly build of it must hold them too.
var echoTranscripts = []servertest.Transcript{
	{
		Name: "greeting and echo",
		Script: []string{
			"a+",
			"a< User ClientId(1) connected.",
			"a> hello",
			"a< User ClientId(1) sent 'hello'",
		},
	},
	{
		Name: "broadcast and leave",
		Script: []string{
			"a+",
			"a< User ClientId(1) connected.",
			"b+",
			"b< User ClientId(2) connected.",
			"b> hi all",
			"a< User ClientId(2) sent 'hi all'",
			"b< User ClientId(2) sent 'hi all'",
			"a>> 0102",
			"a> after binary",
			"a< User ClientId(1) sent 'after binary'",
			"b< User ClientId(1) sent 'after binary'",
			"a-",
			"b< User ClientId(1) left.",
		},
	},
}

func testEcho(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, echoTranscripts)
}

func TestEcho(t *testing.T) { testEcho(t, stateroom.New(NewEcho)) }
