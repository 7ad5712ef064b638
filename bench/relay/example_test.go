package relay_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// printRoom prints what a service sends.
type printRoom struct{}

func (printRoom) ID() string { return "lobby" }
func (printRoom) Send(to stateroom.Recipient, p stateroom.Payload) {
	fmt.Printf("send to %v: %q (binary %v)\n", to, p.Data, p.Binary)
}
func (printRoom) SetTimer(time.Duration) {}

// Wasm is the relay as a guest module: compile it with wasmhost, and the
// module is a factory for server.New like the native relay.Factory.
func ExampleWasm() {
	ctx := context.Background()
	mod, err := wasmhost.Compile(ctx, relay.Wasm(), wasmhost.Options{EventBudget: wasmhost.NoBudget, DisableCache: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mod.Close(ctx)
	svc, err := mod.NewService("lobby")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.(io.Closer).Close()
	svc.Init(printRoom{})
	svc.Connect(printRoom{}, stateroom.ConnectEvent{Client: 1})
	svc.Message(printRoom{}, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("hi")})
	svc.Message(printRoom{}, stateroom.MessageEvent{Client: 1, Payload: stateroom.Binary([]byte{1, 2})})
	// Output:
	// send to everyone: "hi" (binary false)
	// send to everyone: "\x01\x02" (binary true)
}
