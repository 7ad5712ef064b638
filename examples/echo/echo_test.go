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
var echoTranscripts = []struct {
	name   string
	script []string
}{
	{
		name: "greeting and echo",
		script: []string{
			"a+",
			"a< User ClientId(1) connected.",
			"a> hello",
			"a< User ClientId(1) sent 'hello'",
		},
	},
	{
		name: "broadcast and leave",
		script: []string{
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
	for _, tc := range echoTranscripts {
		t.Run(tc.name, func(t *testing.T) {
			servertest.Run(t, f, server.Options{}, tc.script)
		})
	}
}

func TestEcho(t *testing.T) { testEcho(t, stateroom.New(NewEcho)) }
