// Command soak runs a Stateroom server in-process on loopback for a
// bounded time and mixes, all along:
//
//   - healthy clients (wsclient.Group) in native relay rooms and in a
//     WebAssembly relay room, each sending a numbered message every
//     -interval and checking every message of its room arrives once and in
//     order;
//   - faulty clients that send garbage, truncated or unmasked frames,
//     oversize messages, invalid UTF-8, floods past the message rate, or
//     vanish abruptly, each checked for the close code it must get;
//   - stalled readers in a flooded room, which must be closed as slow
//     consumers;
//   - WebAssembly guests made to fault (trap, infinite loop, memory past
//     the cap, proc_exit, malformed send), whose clients must get 1011 and
//     whose room must start fresh.
//
// Every -report it prints a line of counts, goroutines, RSS and heap, and at
// the end a summary. It exits with status 1 if a healthy client lost a
// message, a faulty one was not closed as it must be, or goroutines or RSS
// grew past their bounds; 2 for bad flags.
//
// Usage:
//
//	go run ./test/soak -duration 2m
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	var cfg config
	flag.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long to run the mix (the drain and checks come after)")
	flag.DurationVar(&cfg.Report, "report", 10*time.Second, "interval between progress lines")
	flag.DurationVar(&cfg.Interval, "interval", 50*time.Millisecond, "how often each healthy client sends a message")
	flag.IntVar(&cfg.Rooms, "rooms", 4, "native relay rooms with healthy clients")
	flag.IntVar(&cfg.Clients, "clients", 5, "healthy clients per room")
	flag.IntVar(&cfg.FaultyWorkers, "faulty", 4, "goroutines connecting faulty clients one after another")
	flag.Int64Var(&cfg.MaxRSSGrowthMiB, "max-rss-growth", 64, "fail if RSS at the end exceeds RSS after warm-up by more than this many MiB")
	flag.IntVar(&cfg.MaxGoroutineGrowth, "max-goroutine-growth", 20, "fail if goroutines at the end exceed those after warm-up by more than this")
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak: FAIL:", err)
		os.Exit(1)
	}
}
