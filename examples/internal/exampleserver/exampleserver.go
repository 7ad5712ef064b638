// Package exampleserver is the native entry point the examples share: flags
// --port and --host, a log line saying where to connect, and a graceful
// shutdown on SIGINT or SIGTERM.
package exampleserver

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
)

// Main serves f natively until SIGINT or SIGTERM, then shuts down
// gracefully (clients get close 1001). It exits the process with status 1
// on an error such as a port in use.
func Main(name string, f stateroom.Factory, opts server.Options) {
	port := flag.Int("port", 8080, "TCP port to listen on")
	host := flag.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	slog.Info(name + ": open http://" + addr + "/ or connect a WebSocket client to ws://" + addr + "/ws/ROOM")
	if err := server.ListenAndServe(ctx, addr, f, opts); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		stop()
		os.Exit(1)
	}
}

// Static returns the directory static/ of an example's embedded files, for
// server.Options.StaticFS: the native build carries the example's page, the
// one `stateroom dev` serves from static/, so `go run ./examples/NAME`
// serves it from any directory.
func Static(files embed.FS) fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // fs.Sub fails only on an invalid name; "static" is valid
	}
	return sub
}
