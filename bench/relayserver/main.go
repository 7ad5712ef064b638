// Command relayserver serves bench/relay on the Stateroom server, for
// `stateroom bench`: every message goes to everyone in the room.
//
// The server's abuse limits are off unless --limits is given: a load tool
// on loopback is one address sending as fast as it can, which the default
// MessageRate (100/s per client) and MaxConnectionsPerIP (256) exist to
// refuse, and the baseline it is compared with has no limits.
//
//	go run ./bench/relayserver --addr 127.0.0.1:8080
//	stateroom bench fanout --url ws://127.0.0.1:8080/ws
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	endEmpty := flag.Bool("end-empty-rooms", false, "end a room as soon as its last client leaves (as the gorilla baseline does) instead of after the 30 s grace period")
	limits := flag.Bool("limits", false, "keep the server's default limits (message rate, connections per address and in all, rooms, clients per room) to measure their cost; without it they are off")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error (warn keeps per-room lines out of the measurement, as the baseline logs nothing)")
	flag.Parse()
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "relayserver: --log-level %q is not a level; use debug, info, warn or error\n", *logLevel)
		os.Exit(2)
	}
	opts := server.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	if !*limits {
		opts.MessageRate = server.NoLimit
		opts.MaxConnections = server.NoLimit
		opts.MaxConnectionsPerIP = server.NoLimit
		opts.MaxRooms = server.NoLimit
		opts.MaxClientsPerRoom = server.NoLimit
	}
	if *endEmpty {
		opts.RoomGracePeriod = server.EndRoomsImmediately
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.ListenAndServe(ctx, *addr, relay.Factory(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "relayserver:", err)
		os.Exit(1)
	}
}
