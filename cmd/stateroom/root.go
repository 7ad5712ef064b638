package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCmdRoot returns the stateroom command with all its subcommands.
func NewCmdRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "stateroom",
		Short: "Build, run and develop Stateroom services",
		Long: `stateroom builds Go services to WebAssembly modules, serves them as rooms of
WebSocket clients, and rebuilds them as you edit (stateroom dev).

Start with:  stateroom new myservice && cd myservice && stateroom dev`,
		SilenceUsage:  true, // a failed run prints its error, not the usage
		SilenceErrors: true, // Execute prints it once, prefixed
		// Completion scripts are cobra's default extra command; they are
		// noise in the help of a tool this small.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	// A mistyped flag gets the way to the right ones; cobra's own message
	// names only the flag.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(
		NewCmdServe(nil),
		NewCmdBuild(nil),
		NewCmdDev(nil),
		NewCmdNew(nil),
		NewCmdVersion(),
		newBenchCmd(),
	)
	return root
}

// Execute runs the command line in args and returns the process's exit
// code: 0 on success, 1 on any error (printed to stderr). SIGINT and
// SIGTERM cancel the command's context, which serve and dev answer with a
// graceful shutdown.
func Execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewCmdRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		msg := err.Error()
		if first, rest, _ := strings.Cut(msg, "\n"); strings.HasPrefix(first, "unknown command") {
			// After the first line come cobra's "Did you mean" suggestions.
			msg = first + "; run stateroom --help for the commands\n" + rest
		}
		fmt.Fprintln(stderr, "stateroom: error: "+strings.TrimRight(msg, "\n"))
		return 1
	}
	return 0
}
