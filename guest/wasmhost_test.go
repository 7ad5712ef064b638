//go:build !wasip1

package guest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// sendsRoom records what a service sends.
type sendsRoom struct {
	id    string
	sends []stateroom.Payload
}

func (r *sendsRoom) ID() string                                      { return r.id }
func (r *sendsRoom) Send(_ stateroom.Recipient, p stateroom.Payload) { r.sends = append(r.sends, p) }
func (r *sendsRoom) SetTimer(time.Duration)                          {}

// TestRoomIDThroughWasmhost checks the two halves of the room-id handshake
// together: our host writes the room id through malloc/free at start, as
// upstream's does, and the guest SDK hands it to the service's factory and
// Room.ID.
func TestRoomIDThroughWasmhost(t *testing.T) {
	probeModule(t) // builds probeBytes once
	ctx := context.Background()
	m, err := wasmhost.Compile(ctx, probeBytes, wasmhost.Options{DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	svc, err := m.NewService("room/9")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.(interface{ Close() error }).Close()
	room := &sendsRoom{id: "room/9"}
	svc.Init(room)
	svc.Connect(room, stateroom.ConnectEvent{Client: 1})
	if len(room.sends) != 1 || room.sends[0].String() != "room:room/9:room/9" {
		t.Fatalf("sends %q, want one %q", room.sends, "room:room/9:room/9")
	}
}
