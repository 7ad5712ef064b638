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
	spin := flag.Duration("spin", DefaultSpin, "how long each connection spins the CPU")
	flag.Parse()
	if *spin < 0 {
		fmt.Fprintf(os.Stderr, "cpu-hog: --spin is %v; give a duration of 0 or more, e.g. 10s\n", *spin)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	slog.Info("cpu hog: connect a WebSocket client to ws://" + addr + "/ws/ROOM and wait " + spin.String())
	factory := stateroom.New(func(string) *CPUHog { return &CPUHog{Spin: *spin} })
	if err := server.ListenAndServe(ctx, addr, factory, server.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "cpu-hog:", err)
		os.Exit(1)
	}
}
