package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// BuildOptions are the inputs of `stateroom build`.
type BuildOptions struct {
	// Dir is the project directory (default ".").
	Dir string
	// Log holds the logging flags.
	Log LogFlags
	// Stderr receives progress and the compiler's output.
	Stderr io.Writer
}

// NewCmdBuild returns `stateroom build`. runF does the work; nil means
// runBuild.
func NewCmdBuild(runF func(context.Context, *BuildOptions) error) *cobra.Command {
	opts := &BuildOptions{}
	if runF == nil {
		runF = runBuild
	}
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a Go service to dist/server.wasm",
		Long: `Build the Go service in DIR (default ".") to a WebAssembly module,
DIR/dist/server.wasm, that "stateroom serve" and upstream Stateroom load.

The service package ([service] package in stateroom.toml, default ".") must be
package main registering its service with guest.Register in a file built for
wasip1. The static directory (static_files, default "static" when it exists) is
copied to dist/static, and a [client] package is compiled for the browser to
dist/client/client.wasm with Go's wasm_exec.js.

Compiler errors are shown as the compiler printed them; the command then fails.`,
		Example: `  stateroom build
  stateroom build ./examples/counter && stateroom serve ./examples/counter`,
		Args: maxArgs(1, "one directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.Stderr = cmd.ErrOrStderr()
			return runF(cmd.Context(), opts)
		},
	}
	opts.Log.register(cmd.Flags())
	return cmd
}

// runBuild builds the service, copies the static files and builds the
// client, stopping at the first failure.
func runBuild(ctx context.Context, opts *BuildOptions) error {
	logger, err := opts.Log.logger(opts.Stderr)
	if err != nil {
		return err
	}
	con := newConsole(opts.Stderr, logger, opts.Log.Format == "json")
	p, err := loadProject(opts.Dir)
	if err != nil {
		return err
	}
	if err := p.buildService(ctx, con, opts.Stderr); err != nil {
		return err
	}
	if err := p.copyStatic(con); err != nil {
		return err
	}
	if err := p.buildClient(ctx, con, opts.Stderr); err != nil {
		return err
	}
	con.Printf("done; serve it with: stateroom serve %s", rel(p.dir))
	return nil
}
