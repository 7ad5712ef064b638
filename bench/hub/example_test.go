package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/hub"
	"github.com/stateroom-go/stateroom/client"
)

// A client of room "lobby" gets its own message back, as everyone in the
// room does.
func ExampleNew() {
	h, err := hub.New(hub.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/lobby", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(ctx, stateroom.Text("hello")); err != nil {
		log.Fatal(err)
	}
	msg, ok := <-c.Messages()
	if !ok {
		log.Fatal(c.Err())
	}
	fmt.Println(msg)
	// Output: hello
}
