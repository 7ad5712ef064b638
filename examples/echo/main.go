//go:build !wasip1

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
)

func main() {
	port := flag.Int("port", 8080, "TCP port to listen on")
	host := flag.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	slog.Info("echo server: connect a WebSocket client to ws://" + addr + "/ws/ROOM")
	if err := server.ListenAndServe(ctx, addr, stateroom.New(NewEcho), server.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}
