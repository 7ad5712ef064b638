package relay

import (
	"bytes"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

type sent struct {
	to stateroom.Recipient
	p  stateroom.Payload
}

// fakeRoom records what the service sends. The relay's behaviour over
// real sockets is tested in internal/loadgen (TestFanout/stateroom), the
// wasm relay's in wasm_test.go.
type fakeRoom struct{ sent []sent }

func (r *fakeRoom) ID() string { return "r" }
func (r *fakeRoom) Send(to stateroom.Recipient, p stateroom.Payload) {
	r.sent = append(r.sent, sent{to, stateroom.Payload{Data: bytes.Clone(p.Data), Binary: p.Binary}})
}
func (r *fakeRoom) SetTimer(time.Duration) {}

func TestRelaySendsEveryMessageToEveryone(t *testing.T) {
	svc, err := Factory().NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	room := &fakeRoom{}
	svc.Init(room)
	svc.Connect(room, stateroom.ConnectEvent{Client: 1})
	msgs := []stateroom.Payload{stateroom.Text("hi"), stateroom.Binary([]byte{0, 255})}
	for _, p := range msgs {
		svc.Message(room, stateroom.MessageEvent{Client: 1, Payload: p})
	}
	if len(room.sent) != len(msgs) {
		t.Fatalf("sent %d messages, want %d (one per message, none on connect)", len(room.sent), len(msgs))
	}
	for i, s := range room.sent {
		if s.to != stateroom.Everyone || !bytes.Equal(s.p.Data, msgs[i].Data) || s.p.Binary != msgs[i].Binary {
			t.Errorf("send %d = %v %q binary=%v; want everyone %q binary=%v", i, s.to, s.p.Data, s.p.Binary, msgs[i].Data, msgs[i].Binary)
		}
	}
}
