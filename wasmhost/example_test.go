package wasmhost_test

import (
	"context"
	"fmt"
	"io"

	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// Load compiles a module once; each room gets its own instance from
// NewService. A *Module is a stateroom.Factory: hand it to server.New.
func ExampleLoad() {
	ctx := context.Background()
	mod, err := wasmhost.Load(ctx, "testdata/reactor.wasm", wasmhost.Options{DisableCache: true})
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
	room := stateroomtest.NewRoom("lobby", svc) // runs Init and records what the service does
	room.Connect()
	for _, s := range room.Sent {
		fmt.Printf("send to %v: %q (binary %v)\n", s.To, s.Payload.Data, s.Payload.Binary)
	}
	// Output:
	// send to everyone: "ready" (binary false)
	// send to everyone: "ready" (binary false)
}

// Compile takes the module's bytes; WebAssembly text works too when wabt's
// wat2wasm is installed. Errors say what is wrong and how to fix it.
func ExampleCompile() {
	_, err := wasmhost.Compile(context.Background(), []byte("(module)"), wasmhost.Options{DisableCache: true})
	fmt.Println(err)
	// Output:
	// wasmhost: module does not export what the Stateroom ABI needs: module: no memory exported as "memory"; no function stateroom_recv(i32, i32); no function stateroom_malloc(i32) -> i32; no function stateroom_free(i32, i32); build the service with the Stateroom SDK (`stateroom build` for Go, the stateroom-wasm crate for Rust)
}
