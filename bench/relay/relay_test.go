package relay

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
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

// TestUnlimitedServesChurn creates more fresh rooms from one address, one
// after another, than any default limit of the server allows per address
// (MaxRoomsCreatedPerIP: 100 a minute), as `stateroom bench churn` does
// against bench/relayserver: every one must be admitted.
func TestUnlimitedServesChurn(t *testing.T) {
	url := servertest.Start(t, Factory(), Unlimited(server.Options{RoomGracePeriod: server.EndRoomsImmediately, Logger: slog.New(slog.DiscardHandler)})) + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rooms := 2*server.DefaultMaxRoomsCreatedPerIP + 1
	for i := range rooms {
		c, err := client.Dial(ctx, fmt.Sprintf("%s/churn-%d", url, i), client.Options{})
		if err != nil {
			t.Fatalf("room %d of %d from one address: %v (Unlimited must turn off every per-address limit)", i+1, rooms, err)
		}
		c.Close()
	}
}
