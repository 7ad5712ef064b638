// Command memserver serves one service for `stateroom bench conns`, to
// measure what a room costs the server (docs/PERFORMANCE.md, "Wasm room
// memory"): the native counter below, or a WebAssembly module through
// wasmhost with its mapped memory or, with -heap-memory, wazero's own (the
// host before issue 14). Rooms end as soon as their last client leaves and
// the per-address limits are off, since every client of a benchmark comes
// from 127.0.0.1.
//
//	go run ./wasmhost/internal/memserver -port 8090                      # native
//	go run ./wasmhost/internal/memserver -port 8090 -module server.wasm  # wasm, mapped
//	go run ./wasmhost/internal/memserver -port 8090 -module server.wasm -heap-memory
//	go run ./wasmhost/internal/memserver -port 8090 -module server.wasm -no-userfaultfd
//
// -no-userfaultfd denies the process the userfaultfd system call, as
// Docker's default seccomp profile does, so that the host maps its shared
// memory images with the kernel's fault-around on (the path before it
// turned it off, and its fallback): the same build measured both ways.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// counter is the native counter: the same replies as examples/counter to
// a client that connects and increments (that package is a main package,
// which cannot be imported).
type counter struct {
	stateroom.BaseService
	value, clients int
}

func (c *counter) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	c.clients++
	room.Send(stateroom.To(ev.Client), stateroom.Text("new value: "+strconv.Itoa(c.value)))
	room.Send(stateroom.Everyone, stateroom.Text("clients: "+strconv.Itoa(c.clients)))
}

func (c *counter) Disconnect(stateroom.Room, stateroom.DisconnectEvent) { c.clients-- }

func (c *counter) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if ev.Payload.String() == "increment" {
		c.value++
	}
	room.Send(stateroom.Everyone, stateroom.Text("new value: "+strconv.Itoa(c.value)))
}

func main() {
	port := flag.Int("port", 8090, "TCP port on 127.0.0.1")
	module := flag.String("module", "", "a .wasm module to serve instead of the native counter")
	heap := flag.Bool("heap-memory", false, "wasmhost.Options.HeapMemory: wazero's own memory")
	noUffd := flag.Bool("no-userfaultfd", false, "deny the userfaultfd system call (Linux), so that image mappings keep the kernel's fault-around")
	flag.Parse()
	if *noUffd {
		if err := denyUserfaultfd(); err != nil {
			log.Fatal(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var factory stateroom.Factory = stateroom.New(func(string) *counter { return &counter{} })
	if *module != "" {
		mod, err := wasmhost.Load(ctx, *module, wasmhost.Options{HeapMemory: *heap})
		if err != nil {
			log.Fatal(err)
		}
		defer mod.Close(context.Background())
		factory = mod
	}
	srv, err := server.New(factory, server.Options{
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RoomGracePeriod:      server.EndRoomsImmediately,
		MaxConnectionsPerIP:  server.NoLimit,
		MaxRoomsCreatedPerIP: server.NoLimit,
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("pid %d serving on ws://%s/ws", os.Getpid(), ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}
