//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chatTranscripts are the conversations the chat service must hold; a
// WebAssembly build of it must hold them too.
var chatTranscripts = []servertest.Transcript{
	{
		Name: "nicknames, messages, join and leave",
		Script: []string{
			"a+",
			"a< welcome, user1; set your name with /nick NAME",
			"b+",
			"b< welcome, user2; set your name with /nick NAME",
			"a< user2 joined",
			"a> /nick alice",
			"a< user1 is now alice",
			"b< user1 is now alice",
			"a> hello",
			"a< alice: hello",
			"b< alice: hello",
			"b> hi alice",
			"a< user2: hi alice",
			"b< user2: hi alice",
			"b-",
			"a< user2 left",
		},
	},
	{
		Name: "bad nicknames",
		Script: []string{
			"a+",
			"a< welcome, user1; set your name with /nick NAME",
			"b+",
			"b< welcome, user2; set your name with /nick NAME",
			"a< user2 joined",
			"a> /nick bob",
			"a< user1 is now bob",
			"b< user1 is now bob",
			"b> /nick bob",
			`b< nickname "bob" is taken; pick another`,
			"b> /nick",
			"b< usage: /nick NAME (one word)",
			"b> /nick two words",
			"b< usage: /nick NAME (one word)",
			"b> /nick " + strings.Repeat("x", MaxNickLength+1),
			"b< nickname too long: at most 32 characters",
			"b> /nickname is not a command",
			"a< user2: /nickname is not a command",
			"b< user2: /nickname is not a command",
			"b>> 00",
			"b< chat messages are text; binary message ignored",
		},
	},
}

func testChat(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, chatTranscripts)
}

func TestChat(t *testing.T) { testChat(t, stateroom.New(NewChat)) }
