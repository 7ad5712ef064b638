package cluster_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/cluster"
	"github.com/stateroom-go/stateroom/server"
)

// greeter greets each client of a room.
type greeter struct{ stateroom.BaseService }

func (greeter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text("hello from the room"))
}

// A node of a cluster serving rooms. This one has no peers, so it is a
// cluster of one; give each node Peers (the other nodes' Listen addresses)
// to spread rooms over several. Close the server first (it saves its rooms
// through the node), then the node.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "stateroom-cluster")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, err := cluster.Start(ctx, cluster.Options{
		Node:     "node1",
		Listen:   "127.0.0.1:0", // its peers would dial this address
		StateDir: dir,
		Logger:   quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	srv, err := server.New(stateroom.New(func(string) greeter { return greeter{} }), server.Options{
		Cluster: node, // rooms are placed, forwarded and saved through the cluster
		Logger:  quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer func() {
		hs.Close()
		srv.Shutdown(context.Background())
	}()

	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), client.Options{Room: "lobby"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println((<-c.Messages()).String())
	fmt.Println(node.Status().InCluster)
	// Output:
	// hello from the room
	// true
}
