package wsclient_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
)

// A healthy group shares a relay room with a client that sends an unmasked
// frame: the faulty client gets 1002, the group loses nothing.
func Example() {
	srv, _ := server.New(relay.Factory(), server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/lobby"
	ctx := context.Background()

	g, err := wsclient.JoinGroup(ctx, url, 3, wsclient.GroupOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	bad, _ := wsclient.DialRaw(ctx, url, wsclient.RawOptions{})
	defer bad.Close()
	bad.WriteFrames(wsclient.Frame{Fin: true, Op: wsclient.OpText, Payload: []byte("not masked")})
	closed, err := bad.ReadClose(5 * time.Second)
	fmt.Printf("%d (%v) %v\n", closed.Code, closed.Code, err)

	g.SendAll()
	fmt.Println(g.WaitDelivered(ctx))
	sent, due, delivered := g.Counts()
	fmt.Println(sent, due, delivered)
	// Output:
	// 1002 (protocol error) <nil>
	// <nil>
	// 3 9 9
}
