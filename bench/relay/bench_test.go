package relay

import (
	"io"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// countRoom counts sends and keeps nothing, so that a benchmark measures
// the service's own cost per message. The tests use stateroomtest.Room;
// it would add a copy and an allocation per message here, to native and
// wasm alike, and blur the difference this benchmark is for.
type countRoom struct{ sends int }

func (*countRoom) ID() string                                    { return "r" }
func (r *countRoom) Send(stateroom.Recipient, stateroom.Payload) { r.sends++ }
func (*countRoom) SetTimer(time.Duration)                        {}

// Close refuses what the runtime refuses; the relay never closes anyone.
func (*countRoom) Close(_ stateroom.ClientID, code stateroom.CloseCode, _ string) error {
	return stateroom.CheckServiceClose(code)
}

// BenchmarkMessage is the cost of one 64-byte message event in the native
// relay and in the wasm relay with and without an event budget: the
// per-frame difference `stateroom bench fanout` sees between relayserver
// and relayserver --wasm, without the sockets.
func BenchmarkMessage(b *testing.B) {
	factories := []struct {
		name string
		f    func(b *testing.B) stateroom.Factory
	}{
		{"native", func(*testing.B) stateroom.Factory { return Factory() }},
		{"wasm", func(b *testing.B) stateroom.Factory {
			return compileWasm(b, wasmhost.Options{EventBudget: wasmhost.NoBudget})
		}},
		{"wasm-budget", func(b *testing.B) stateroom.Factory { return compileWasm(b, wasmhost.Options{}) }},
	}
	for _, fc := range factories {
		b.Run(fc.name, func(b *testing.B) {
			svc, err := fc.f(b).NewService("r")
			if err != nil {
				b.Fatal(err)
			}
			if c, ok := svc.(io.Closer); ok {
				defer c.Close()
			}
			room := &countRoom{}
			svc.Init(room, stateroom.InitEvent{})
			ev := stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("0:0:123456789:.............................................")}
			b.ReportAllocs()
			for b.Loop() {
				svc.Message(room, ev)
			}
			if room.sends != b.N {
				b.Fatalf("%d sends for %d messages", room.sends, b.N)
			}
		})
	}
}
