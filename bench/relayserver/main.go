// Command relayserver serves bench/relay on the Stateroom server, for
// `stateroom bench`: every message goes to everyone in the room.
//
// With --wasm it serves the same relay as a WebAssembly guest
// (bench/relay/relay.wat) through package wasmhost instead of the native Go
// service, to measure what the wasm path costs. The guest is trusted, so it
// runs without the per-event CPU budget (wasmhost.NoBudget) unless
// --wasm-budget asks for the default budget, whose checks have a cost of
// their own.
//
// The server's abuse limits are off unless --limits is given: a load tool
// on loopback is one address sending as fast as it can, which the default
// MessageRate (100/s per client) and MaxConnectionsPerIP (256) exist to
// refuse, and the baseline it is compared with has no limits.
//
//	go run ./bench/relayserver --addr 127.0.0.1:8080
//	stateroom bench fanout --url ws://127.0.0.1:8080/ws
//	go run ./bench/relayserver --wasm --wasm-budget
//	go run ./bench/relayserver --end-empty-rooms --cpuprofile /tmp/relay.prof   # profile written on SIGTERM
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/stateroom-go/stateroom/bench/profile"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/wasmhost"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "relayserver:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a bad command line.
var errUsage = errors.New("usage")

// run is main with errors returned, so that deferred cleanups run.
func run() error {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	endEmpty := flag.Bool("end-empty-rooms", false, "end a room as soon as its last client leaves (as the gorilla baseline does) instead of after the 30 s grace period")
	limits := flag.Bool("limits", false, "keep the server's default limits (message rate, connections per address and in all, rooms, clients per room) to measure their cost; without it they are off")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error (warn keeps per-room lines out of the measurement, as the baseline logs nothing)")
	wasm := flag.Bool("wasm", false, "serve the relay as a WebAssembly guest through wasmhost instead of the native Go service")
	wasmBudget := flag.Bool("wasm-budget", false, "with --wasm, run the guest under wasmhost's default per-event CPU budget instead of none")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	flag.Parse()
	if *wasmBudget && !*wasm {
		return fmt.Errorf("%w: --wasm-budget applies to the wasm relay only; add --wasm", errUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q is not a level; use debug, info, warn or error", errUsage, *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := server.Options{Logger: logger}
	if !*limits {
		opts = relay.Unlimited(opts)
	}
	if *endEmpty {
		opts.RoomGracePeriod = server.EndRoomsImmediately
	}
	stopProfile, err := profile.StartCPU(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	factory := relay.Factory()
	if *wasm {
		hostOpts := wasmhost.Options{
			EventBudget: wasmhost.NoBudget,
			// The guest is a few hundred bytes: compiling it takes
			// milliseconds, not worth a cache directory on disk.
			DisableCache: true,
			Logger:       logger,
		}
		if *wasmBudget {
			hostOpts.EventBudget = 0 // wasmhost.DefaultEventBudget
		}
		mod, err := wasmhost.Compile(ctx, relay.Wasm(), hostOpts)
		if err != nil {
			return err
		}
		// ListenAndServe has ended every room when it returns.
		defer mod.Close(context.Background())
		factory = mod
	}
	return server.ListenAndServe(ctx, *addr, factory, opts)
}
