package relay

import (
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// TestRelaySendsEveryMessageToEveryone runs the native relay in a recording
// room. The relay's behaviour over real sockets is tested in
// internal/loadgen (TestFanout/stateroom), the wasm relay's in
// wasm_test.go.
func TestRelaySendsEveryMessageToEveryone(t *testing.T) {
	svc, err := Factory().NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	room := stateroomtest.NewRoom("r", svc)
	a, b := room.Connect(), room.Connect()
	msgs := []stateroom.Payload{stateroom.Text("hi"), stateroom.Binary([]byte{0, 255}), stateroom.Text("")}
	for i, p := range msgs {
		room.Message([]stateroom.ClientID{a, b}[i%2], p)
	}
	if len(room.Sent) != len(msgs) {
		t.Fatalf("sent %v; want %d messages (one per message, none on connect)", room.Sent, len(msgs))
	}
	for i, s := range room.Sent {
		if s.To != stateroom.Everyone || !samePayload(s.Payload, msgs[i]) || !slices.Equal(s.Reached, []stateroom.ClientID{a, b}) {
			t.Errorf("send %d is %v; want to everyone, reaching both, the sender included: %q binary=%v", i, s, msgs[i].Data, msgs[i].Binary)
		}
	}
}

func samePayload(a, b stateroom.Payload) bool {
	return a.Binary == b.Binary && string(a.Data) == string(b.Data)
}
