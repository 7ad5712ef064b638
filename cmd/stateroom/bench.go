package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stateroom-go/stateroom/internal/loadgen"
)

// newBenchCmd returns `stateroom bench` and its three modes. Each mode
// prints a progress line on stderr while it runs and a summary at the end
// (stdout; stderr with --json, which puts one JSON line on stdout), and
// exits non-zero when the run failed its check.
func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a relay server: fan-out, idle connections, room churn",
		Long: `bench drives a Stateroom server that runs a relay service (every message
goes to everyone in the room, as bench/relay does: go run ./bench/relayserver)
over real WebSocket connections. Every run is bounded in count and in time
(--duration). bench/run.sh compares the server with a gorilla/websocket
baseline.

Pin the server and the tool to different cores to measure the server, e.g.
  taskset -c 0 go run ./bench/relayserver &
  taskset -c 1 stateroom bench fanout --server-pid $(pgrep relayserver)`,
	}
	cmd.AddCommand(
		benchMode(loadgen.Fanout, &cobra.Command{
			Use:   "fanout",
			Short: "Rooms x clients; senders relay messages to their room; checks every delivery",
			Long: `fanout opens --rooms x --clients connections; --senders clients of each room
send --messages messages each, at most --window in flight, and every client
checks that it got every message of its room exactly once and in order. It
reports delivered frames/s, the senders' round trip and CPU per frame, and
exits with an error on any loss, duplicate or reorder.`,
		}, func(fs *pflag.FlagSet, o *loadgen.Options) {
			fs.IntVar(&o.Rooms, "rooms", 1, "rooms")
			fs.IntVar(&o.Clients, "clients", 50, "clients per room")
			fs.IntVar(&o.Senders, "senders", 1, "senders per room (they receive too)")
			fs.IntVar(&o.Window, "window", 16, "messages each sender has in flight at most")
			fs.IntVar(&o.Messages, "messages", 1000, "messages per sender")
			fs.IntVar(&o.Size, "size", 64, "bytes per message (at least 32)")
			fs.DurationVar(&o.StallTimeout, "stall", 5*time.Second, "end the run when nothing was delivered for this long")
		}),
		benchMode(loadgen.Conns, &cobra.Command{
			Use:   "conns",
			Short: "Idle connections: server memory per connection, setup rate and latency",
			Long: `conns opens --conns idle connections over --rooms rooms and reports the
setup rate, the connect latency (p50, p90, p99, max) and, with --server-pid,
the server's resident memory before, with the connections open and after
closing them, and per connection. Raise the open-file limit (ulimit -n) of
both processes for large counts.

The connect latency runs from starting to dial to the room's first message
when the service sends one on connect (the counter example does), so that
it includes the service's Connect; else to the completed WebSocket
handshake (a relay sends nothing). Either way it includes creating the
room: the server does that before it answers the handshake. The first
connection is made alone and waits up to a second for a message to tell
which; the report says which ("dial to first reply" or "dial to
handshake"; JSON connect_to). When it ends at the first reply, the latency
to the handshake is reported too, and a connection that gets no message
within a second (a service that greets only a room's first client) is
counted as ungreeted and measured to the handshake only.`,
		}, func(fs *pflag.FlagSet, o *loadgen.Options) {
			fs.IntVar(&o.Conns, "conns", 1000, "idle connections")
			fs.IntVar(&o.Rooms, "rooms", 1, "rooms the connections are spread over")
			fs.DurationVar(&o.Hold, "hold", 2*time.Second, "wait after opening and after closing before reading the server's memory")
		}),
		benchMode(loadgen.Churn, &cobra.Command{
			Use:   "churn",
			Short: "Fresh rooms: connect, one round trip, close; rooms/s",
			Long: `churn creates --rooms fresh rooms, --concurrency at a time: connect, send one
message, wait for it to come back, close. It reports rooms/s, the latency from
connecting to the reply and, with --server-pid, the server's CPU per room.`,
		}, func(fs *pflag.FlagSet, o *loadgen.Options) {
			fs.IntVar(&o.Rooms, "rooms", 1000, "fresh rooms to create")
			fs.IntVar(&o.Size, "size", 64, "bytes per message (at least 32)")
		}),
	)
	return cmd
}

// benchMode completes the command of one mode: the flags every mode has,
// the mode's own (modeFlags), and a RunE that runs it. Each mode has its
// own Options, so flags of the same name in two modes keep their own
// defaults.
func benchMode(mode func(context.Context, loadgen.Options) (*loadgen.Report, error), cmd *cobra.Command, modeFlags func(*pflag.FlagSet, *loadgen.Options)) *cobra.Command {
	var o loadgen.Options
	var jsonOut bool
	fs := cmd.Flags()
	fs.StringVar(&o.URL, "url", "ws://127.0.0.1:8080/ws", "the server's WebSocket endpoint; rooms are URL/{room}")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "upper bound on the run")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "connections being set up at once (churn: rooms in progress at once)")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "the server's process id, to measure its CPU time and memory from /proc (0: not measured)")
	fs.StringVar(&o.RoomPrefix, "room-prefix", "", `start of the run's room ids (default "bench-" and the start time)`)
	fs.BoolVar(&jsonOut, "json", false, "print one JSON line on stdout (and the summary on stderr)")
	modeFlags(fs, &o)
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runBench(cmd, jsonOut, o, mode)
	}
	return cmd
}

// runBench runs one mode with a progress line and prints its report; the
// report is printed even when the run failed, so a failure shows its counts.
func runBench(cmd *cobra.Command, jsonOut bool, o loadgen.Options, mode func(context.Context, loadgen.Options) (*loadgen.Report, error)) error {
	stderr := cmd.ErrOrStderr()
	o.Progress = progressPrinter(stderr)
	rep, err := mode(cmd.Context(), o)
	clearProgress(stderr)
	if rep != nil {
		summary := cmd.OutOrStdout()
		if jsonOut {
			summary = stderr
			if jerr := rep.WriteJSON(cmd.OutOrStdout()); jerr != nil {
				return jerr
			}
		}
		if serr := rep.WriteSummary(summary); serr != nil {
			return serr
		}
	}
	return err
}

// isTerminal reports whether w is a terminal, where the progress line
// rewrites itself; elsewhere (a log file, CI) each report is a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func progressPrinter(w io.Writer) func(loadgen.Progress) {
	tty := isTerminal(w)
	return func(p loadgen.Progress) {
		line := fmt.Sprintf("%s %s: %d/%d, %.1fs", p.Mode, p.Phase, p.Done, p.Total, p.Elapsed.Seconds())
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func clearProgress(w io.Writer) {
	if isTerminal(w) {
		fmt.Fprint(w, "\r\033[K")
	}
}
