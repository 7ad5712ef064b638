package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
)

// shout greets each client and sends every message back in capitals.
type shout struct{ stateroom.BaseService }

func (shout) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("welcome to %s, client %d", r.ID(), ev.Client)))
}

func (shout) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	b := []byte(ev.Payload.String())
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	r.Send(stateroom.To(ev.Client), stateroom.Payload{Data: b, Binary: ev.Payload.Binary})
}

// Dial a room of a server, send a message, read the answers, close.
func Example() {
	srv, err := server.New(stateroom.New(func(string) shout { return shout{} }),
		server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	ts := httptest.NewServer(srv)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// ts.URL is http://127.0.0.1:PORT; the Conn joins ws://…/ws/lobby and,
	// should the server restart the service, reconnects with its token.
	c, err := client.Dial(ctx, ts.URL, client.Options{Room: "lobby", Reconnect: true})
	if err != nil {
		panic(err)
	}
	fmt.Println((<-c.Messages()).String())
	if err := c.Send(ctx, stateroom.Text("hello")); err != nil {
		panic(err)
	}
	fmt.Println((<-c.Messages()).String())
	fmt.Println(c.Close(), c.State(), c.Err())
	// Output:
	// welcome to lobby, client 1
	// HELLO
	// <nil> closed stateroom client: connection closed
}

// Receive takes one message at a time, within a deadline; once the Conn is
// closed for good it returns why.
func ExampleConn_Receive() {
	srv, err := server.New(stateroom.New(func(string) shout { return shout{} }),
		server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	ts := httptest.NewServer(srv)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, ts.URL, client.Options{Room: "lobby"})
	if err != nil {
		panic(err)
	}
	msg, err := c.Receive(ctx)
	fmt.Println(msg, err)
	srv.CloseRoom("lobby", 4100, "game over")
	_, err = c.Receive(ctx)
	fmt.Println(err)
	// Output:
	// welcome to lobby, client 1 <nil>
	// stateroom client: connection closed with 4100 (service code 4100): game over
}
