package relay_test

import (
	"context"
	"fmt"
	"io"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

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
	room := stateroomtest.NewRoom("lobby", svc)
	a := room.Connect()
	room.Message(a, stateroom.Text("hi"))
	room.Message(a, stateroom.Binary([]byte{1, 2}))
	for _, s := range room.Sent {
		fmt.Printf("send to %v: %q (binary %v)\n", s.To, s.Payload.Data, s.Payload.Binary)
	}
	// Output:
	// send to everyone: "hi" (binary false)
	// send to everyone: "\x01\x02" (binary true)
}
