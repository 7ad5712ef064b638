package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
)

// greeter greets each client with its id and room.
type greeter struct{ stateroom.BaseService }

func (greeter) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("hello %d, this is room %s", ev.Client, r.ID())))
}

// A Server is an http.Handler: mount it, here under /rooms/.
func ExampleNew() {
	s, err := server.New(stateroom.New(func(string) greeter { return greeter{} }), server.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/rooms/", http.StripPrefix("/rooms", s))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	// A Go program joins a room with package client.
	c, err := client.Dial(context.Background(), ts.URL+"/rooms", client.Options{Room: "lobby"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(<-c.Messages())
	// Output: hello 1, this is room lobby
}

// ListenAndServe runs until its context is done, then shuts down
// gracefully; a busy port gives an error that says so.
func ExampleListenAndServe() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real program would use signal.NotifyContext
	err := server.ListenAndServe(ctx, "127.0.0.1:0", stateroom.New(func(string) greeter { return greeter{} }), server.Options{})
	fmt.Println(err)
	// Output: <nil>
}

// user greets each client with the identity Options.Authenticate gave it.
type user struct{ stateroom.BaseService }

func (user) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("welcome, %v", server.ClientIdentity(r, ev.Client))))
}

// Options.Authenticate checks each WebSocket request before the upgrade;
// the identity it returns reaches the service through ClientIdentity.
func ExampleClientIdentity() {
	s, err := server.New(stateroom.New(func(string) user { return user{} }), server.Options{
		Authenticate: func(r *http.Request, roomID string) (any, error) {
			name := r.URL.Query().Get("name") // a real check verifies a session or a signed token
			if name == "" {
				return nil, errors.New("log in first")
			}
			return name, nil
		},
	})
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(context.Background())
	ts := httptest.NewServer(s)
	defer ts.Close()
	url := ts.URL + "/ws/lobby"

	if _, err := client.Dial(context.Background(), url, client.Options{}); err != nil {
		var refused *client.HandshakeError
		if errors.As(err, &refused) {
			fmt.Println("anonymous:", refused.Status, http.StatusText(refused.Status))
		}
	}
	c, err := client.Dial(context.Background(), url+"?name=ada", client.Options{})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(<-c.Messages())
	// Output:
	// anonymous: 401 Unauthorized
	// welcome, ada
}
