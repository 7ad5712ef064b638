package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateroom-go/stateroom/internal/preinit"
)

// BuildOptions are the inputs of `stateroom build`.
type BuildOptions struct {
	// Dir is the project directory (default ".").
	Dir string
	// Log holds the logging flags.
	Log LogFlags
	// Stderr receives progress and the compiler's output.
	Stderr io.Writer
	// NoPreinit leaves the module's start-up to every instance
	// (--no-preinit) instead of running it at build time.
	NoPreinit bool
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

The module is pre-initialised: its start-up (the Go runtime's init, every
package's init functions, guest.Register) runs once at build time and the
memory it leaves is written into the module, so a room starts without running
it. The random generators the runtime seeded are reseeded in every room; the
environment (empty), clock readings taken during init (the build's clock,
which starts at 1970) and the hash seeds of maps built in init are frozen. A
panic during start-up, or a service that registers in main instead of init,
fails the build. --no-preinit leaves start-up to every room.

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
	cmd.Flags().BoolVar(&opts.NoPreinit, "no-preinit", false, "do not pre-initialise the module: every room runs its start-up")
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
	p.noPreinit = opts.NoPreinit
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

// preinitService pre-initialises the service's module in place (see
// internal/preinit), unless p.noPreinit. buildService calls it, so build
// and dev write the same module. On failure the module is removed: it
// would fail in every room (a panic in init, no service registered).
func (p *project) preinitService(ctx context.Context, con *console) error {
	path := p.serviceModule()
	if p.noPreinit {
		con.Printf("not pre-initialised (--no-preinit): every room runs the module's start-up")
		return nil
	}
	module, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, res, err := preinit.Run(ctx, module, preinit.Options{})
	if err != nil {
		os.Remove(path)
		if errors.Is(err, preinit.ErrStartup) || errors.Is(err, preinit.ErrNotRegistered) {
			return fmt.Errorf("%w\n(stateroom build runs the module's start-up at build time; --no-preinit skips that, but every room would then fail the same way)", err)
		}
		return err
	}
	tmp, err := os.CreateTemp(p.distDir, ".server.wasm.*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up on failure
	_, err = tmp.Write(out)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	con.Printf("pre-initialised %s: start-up ran at build time (%v), rooms start from its %.1f MiB of memory; %d random generator states reseeded per room",
		rel(path), res.Startup.Round(time.Millisecond), float64(res.MemoryBytes)/(1<<20), res.Reseeded)
	return nil
}
