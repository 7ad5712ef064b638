//go:build !wasip1

package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/store"
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
			"a< here: user1",
			"b+",
			"b< welcome, user2; set your name with /nick NAME",
			"b< here: user1 user2",
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
		Name: "a newcomer sees the recent messages",
		Script: []string{
			"a+",
			"a< welcome, user1; set your name with /nick NAME",
			"a< here: user1",
			"a> first",
			"a< user1: first",
			"a> second",
			"a< user1: second",
			"b+",
			"b< welcome, user2; set your name with /nick NAME",
			"b< here: user1 user2",
			"b< user1: first",
			"b< user1: second",
			"a< user2 joined",
		},
	},
	{
		Name: "bad nicknames",
		Script: []string{
			"a+",
			"a< welcome, user1; set your name with /nick NAME",
			"a< here: user1",
			"b+",
			"b< welcome, user2; set your name with /nick NAME",
			"b< here: user1 user2",
			"a< user2 joined",
			"a> /nick bob",
			"a< user1 is now bob",
			"b< user1 is now bob",
			"c+",
			"c< welcome, user3; set your name with /nick NAME",
			"c< here: bob user2 user3",
			"a< user3 joined",
			"b< user3 joined",
			"c-",
			"a< user3 left",
			"b< user3 left",
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

// chatBeforeRestart and chatAfterRestart play across a restart of the
// server onto the same store: the history is kept, the nicknames (which
// belong to the clients of the time) are not.
var (
	chatBeforeRestart = []string{
		"a+",
		"a< welcome, user1; set your name with /nick NAME",
		"a< here: user1",
		"a> /nick alice",
		"a< user1 is now alice",
		"a> hello",
		"a< alice: hello",
		"a> anyone here?",
		"a< alice: anyone here?",
	}
	chatAfterRestart = []string{
		"b+",
		"b< welcome, user1; set your name with /nick NAME",
		"b< here: user1",
		"b< alice: hello",
		"b< alice: anyone here?",
		"b> /nick alice",
		"b< user1 is now alice",
	}
)

func testChat(t *testing.T, f stateroom.Factory) {
	servertest.RunAll(t, f, server.Options{}, chatTranscripts)
	t.Run("restart", func(t *testing.T) {
		opts := server.Options{Store: store.NewMemory()}
		// Each servertest.Run stops its server, which saves every room,
		// when its subtest ends.
		t.Run("before", func(t *testing.T) { servertest.Run(t, f, opts, chatBeforeRestart) })
		t.Run("after", func(t *testing.T) { servertest.Run(t, f, opts, chatAfterRestart) })
	})
}

// TestChatHistoryIsBounded: a newcomer is shown the last HistoryLength
// messages, and so is the room restored from a snapshot.
func TestChatHistoryIsBounded(t *testing.T) {
	chat := NewChat("r")
	room := stateroomtest.NewRoom("r", chat)
	a := room.Connect()
	for i := range HistoryLength + 5 {
		room.Message(a, stateroom.Text(fmt.Sprint(i)))
	}
	var want []string
	for i := 5; i < HistoryLength+5; i++ {
		want = append(want, fmt.Sprintf("user1: %d", i))
	}
	b := room.Connect()
	if got := texts(room.Received(b))[2:]; !slices.Equal(got, want) {
		t.Fatalf("a newcomer was shown %q, want the last %d messages %q", got, HistoryLength, want)
	}

	snap, err := chat.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewChat("r")
	if err := restored.Restore(snap); err != nil {
		t.Fatalf("Restore(%s): %v", snap, err)
	}
	again := stateroomtest.NewRoom("r", restored)
	c := again.Connect()
	if got := texts(again.Received(c))[2:]; !slices.Equal(got, want) {
		t.Fatalf("after a restore a newcomer was shown %q, want %q", got, want)
	}
	if err := NewChat("r").Restore([]byte("not json")); err == nil {
		t.Error("Restore accepted a snapshot that is not JSON")
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

func TestChat(t *testing.T) { testChat(t, stateroom.New(NewChat)) }

// TestChatNamesWokenClients: a room woken from hibernation gets a new
// instance, restored from the snapshot, whose clients stayed connected
// without a Connect; Init names them, and they keep their nicknames. After
// a restart (Init names no one) the saved nicknames are dropped.
func TestChatNamesWokenClients(t *testing.T) {
	chat := NewChat("r")
	room := stateroomtest.NewRoom("r", chat)
	a, b := room.Connect(), room.Connect()
	room.Message(a, stateroom.Text("/nick alice"))
	snap, err := chat.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	room.TakeSent()

	woken := NewChat("r")
	if err := woken.Restore(snap); err != nil {
		t.Fatal(err)
	}
	woken.Init(room, stateroom.InitEvent{Restored: true, Clients: []stateroom.ClientID{a, b}})
	woken.Message(room, stateroom.MessageEvent{Client: a, Payload: stateroom.Text("still here")})
	woken.Disconnect(room, stateroom.DisconnectEvent{Client: b})
	if got := texts(room.Received(a)); !slices.Equal(got, []string{"alice: still here", "user2 left"}) {
		t.Fatalf("after waking, a received %q, want [alice: still here user2 left]", got)
	}

	restarted := NewChat("r")
	if err := restarted.Restore(snap); err != nil {
		t.Fatal(err)
	}
	after := stateroomtest.NewRoom("r", restarted) // Init with no clients
	c := after.Connect()
	if got := texts(after.Received(c))[1]; got != "here: user1" {
		t.Fatalf("after a restart a newcomer was told %q, want the saved names dropped: here: user1", got)
	}
}
