package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/store"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// ServeOptions are the inputs of `stateroom serve`.
type ServeOptions struct {
	// Target is the module file (.wasm or .wat) or a directory holding
	// server.wasm (or dist/server.wasm, as `stateroom build` writes it).
	Target string
	// Static overrides the static directory served at "/" (--static).
	Static string
	// Server holds the server, sandbox and log flags.
	Server ServerFlags
	// Cluster holds the flags of a cluster node (--node, ...).
	Cluster ClusterFlags
	// Stderr receives logs and messages.
	Stderr io.Writer
}

// NewCmdServe returns `stateroom serve`. runF does the work; nil means
// runServe. Tests pass their own runF to check flag parsing alone.
func NewCmdServe(runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{}
	if runF == nil {
		runF = runServe
	}
	cmd := &cobra.Command{
		Use:   "serve MODULE|DIR",
		Short: "Serve a WebAssembly service module",
		Long: `Serve a Stateroom service compiled to WebAssembly.

MODULE is a .wasm file (or a .wat text file, converted with wat2wasm). DIR is a
directory holding server.wasm and an optional static/ directory served at "/",
or a project directory after "stateroom build" or "stateroom dev"
(dist/server.wasm and dist/static/). When there is no page to serve at "/",
the line with the URL says so. Every server also serves the browser client at
/stateroom.js and the pages' stylesheet at /stateroom.css.

Clients connect to ws://HOST:PORT/ws/{room}; a room is created on first
connection. GET /status answers "ok". SIGINT or SIGTERM stops the server
gracefully: every client gets close code 1001.

Rooms outlive the process: a room whose service can snapshot its state
(stateroom.Snapshotter; a Go service through the guest SDK) is saved to
.stateroom/rooms.db in the working directory at most once per
--checkpoint-interval while it has events, when it ends and at shutdown, and
restored when it next starts, in this process or the next. A crash loses at
most the last interval. --state-dir moves the file; one process at a time may
use it. --no-state keeps rooms in memory only. A room idle for
--hibernate-after drops its instance while its clients stay connected.

The server listens on 127.0.0.1 unless --host says otherwise: pass
--host 0.0.0.0 to accept connections from other machines (in a container, say).

In production: browsers may connect from the server's own origin only, unless
--allowed-origin adds others. --client-token makes every client present a
secret (?auth=TOKEN or "Authorization: Bearer TOKEN"); --admin-token turns on
GET /admin/rooms and POST /admin/rooms/{room}/close. Both tokens may come from
the environment instead, STATEROOM_CLIENT_TOKEN and STATEROOM_ADMIN_TOKEN, which
other users cannot read in ps; a flag wins over its variable. Prometheus
metrics are at /metrics (--metrics-path, --no-metrics). Connections, rooms,
clients per room and each client's message rate are limited by default (see
the --max-* and --message-* flags; "none" turns one off). --tls-cert and
--tls-key serve https and wss.`,
		Example: `  stateroom serve ./examples/counter/dist
  stateroom serve service.wasm -p 9000 --host 0.0.0.0
  stateroom serve service.wasm --event-budget 500ms --memory-limit 32MiB
  stateroom serve dist --state-dir /var/lib/stateroom --checkpoint-interval 5s
  STATEROOM_ADMIN_TOKEN=$(openssl rand -hex 32) stateroom serve dist --host 0.0.0.0 \
      --allowed-origin https://app.example.com --tls-cert cert.pem --tls-key key.pem`,
		Args: exactArgs(1, "a module file or a directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			opts.Stderr = cmd.ErrOrStderr()
			if st, err := os.Stat(opts.Target); err == nil && st.IsDir() {
				if err := applyProjectFlags(opts.Target, cmd.Flags()); err != nil {
					return err
				}
			}
			if err := opts.Server.complete(cmd.Flags()); err != nil {
				return err
			}
			if err := opts.Cluster.validate(opts.Server.NoState); err != nil {
				return err
			}
			return runF(cmd.Context(), opts)
		},
	}
	opts.Server.register(cmd.Flags())
	opts.Cluster.register(cmd.Flags())
	cmd.Flags().StringVar(&opts.Static, "static", "", "directory of static files served at / (default: static/ beside server.wasm)")
	return cmd
}

// runServe loads the module, serves it until the context is done and shuts
// down gracefully.
func runServe(ctx context.Context, opts *ServeOptions) error {
	logger, err := opts.Server.Log.logger(opts.Stderr)
	if err != nil {
		return err
	}
	con := newConsole(opts.Stderr, logger, opts.Server.Log.Format == "json")

	module, static, client, err := resolveServeTarget(opts.Target)
	if err != nil {
		return err
	}
	if opts.Static != "" {
		if st, err := os.Stat(opts.Static); err != nil || !st.IsDir() {
			return fmt.Errorf("--static %s: no such directory", opts.Static)
		}
		static = opts.Static
	}

	// The state file before the module: a file another process holds
	// should fail at once, not after a compile of seconds. A cluster node
	// keeps state in the cluster instead.
	var st *store.Bolt
	if !opts.Cluster.enabled() {
		if st, err = opts.Server.openStore(); err != nil {
			return err
		}
	}
	if st != nil {
		// Deferred first, so it runs last: after Serve has shut the
		// server down, which saves every room.
		defer closeStore(st, logger)
	}

	mod, err := loadModule(ctx, module, opts.Server.hostOptions(logger))
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while compiling: nothing was served
		}
		return moduleError(module, err)
	}
	defer mod.Close(context.Background())
	if ctx.Err() != nil {
		return nil // interrupted while compiling: nothing was served
	}

	so := opts.Server.serverOptions(logger, static, client)
	if st != nil {
		so.Store = st // not a nil *store.Bolt in the interface: that would be a store
	}
	note := opts.Server.stateNote()
	if opts.Cluster.enabled() {
		node, err := opts.Cluster.start(ctx, opts.Server.StateDir, logger)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted while waiting for the cluster
			}
			return err
		}
		// Deferred before Serve: it runs after Serve has shut the server
		// down (which saves every room through the node).
		defer func() {
			if err := node.Close(); err != nil {
				logger.Warn("leaving the cluster", "err", err)
			}
		}()
		so.Cluster = node
		note = opts.Cluster.note()
	}
	srv, err := server.New(mod, so)
	if err != nil {
		return err
	}
	ln, err := opts.Server.listen()
	if err != nil {
		return err
	}
	httpURL, wsURL := urls(ln, opts.Server.TLSCert != "")
	what := opts.Target
	if static != "" {
		what += " (static files from " + static + ")"
	}
	advice := "pass --static DIR to serve a page"
	if module != opts.Target { // a directory, where static/ would be
		advice = "no static/ beside " + module + "; pass --static DIR to serve a page"
	}
	con.Printf("serving %s on %s (%s)%s%s", what, httpURL, wsURL, note, pageNote(static, advice))
	// The server logs "stopped" itself once every client is closed.
	return opts.Server.serve(ctx, ln, srv, logger)
}

// loadModule is wasmhost.Load that returns as soon as ctx is done:
// compiling a module takes seconds, and Ctrl-C should not wait for it. The
// compile goes on in the background until it ends; a module it yields
// then is closed. The process is exiting by then, or dev has moved on.
func loadModule(ctx context.Context, path string, o wasmhost.Options) (*wasmhost.Module, error) {
	type result struct {
		m   *wasmhost.Module
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := wasmhost.Load(ctx, path, o)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.m != nil {
				r.m.Close(context.Background())
			}
		}()
		return nil, ctx.Err()
	}
}

// resolveServeTarget finds the module file of a serve target and, for a
// directory, the static and client directories beside the module: the
// layout `stateroom build` writes to dist/.
func resolveServeTarget(target string) (module, static, client string, err error) {
	st, err := os.Stat(target)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", "", fmt.Errorf("%s does not exist; pass a .wasm file or a directory holding server.wasm", target)
		}
		return "", "", "", err
	}
	if !st.IsDir() {
		ext := strings.ToLower(filepath.Ext(target))
		if ext != ".wasm" && ext != ".wat" {
			return "", "", "", fmt.Errorf("%s is not a .wasm or .wat file; pass a WebAssembly module or a directory holding server.wasm", target)
		}
		return target, "", "", nil
	}
	for _, sub := range []string{".", "dist"} {
		m := filepath.Join(target, sub, "server.wasm")
		if _, err := os.Stat(m); err == nil {
			return m, dirIfExists(filepath.Join(target, sub, "static")), dirIfExists(filepath.Join(target, sub, "client")), nil
		}
	}
	return "", "", "", fmt.Errorf("%s holds no server.wasm (nor dist/server.wasm); build the service first with `stateroom build %s`, or run `stateroom dev %s`", target, target, target)
}

// pageNote ends the ready line when "/" has no page, so that a browser
// opened on the URL does not meet a 404 nobody explained: static is the
// directory served at "/" ("" for none), advice what to do without one.
func pageNote(static, advice string) string {
	if static == "" {
		return "; no page at / (" + advice + ")"
	}
	if st, err := os.Stat(filepath.Join(static, "index.html")); err != nil || !st.Mode().IsRegular() {
		return "; no page at / (" + rel(static) + " has no index.html)"
	}
	return ""
}

// dirIfExists returns path if it is a directory, else "".
func dirIfExists(path string) string {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return path
	}
	return ""
}

// moduleError adds what to do to an error of wasmhost.Load. The host's
// errors already name the problem; a module that is WebAssembly but not a
// Stateroom service most often comes from a plain `go build`.
func moduleError(path string, err error) error {
	if errors.Is(err, wasmhost.ErrExport) || errors.Is(err, wasmhost.ErrVersion) {
		return fmt.Errorf("%s is not a Stateroom service module: %w\n(a Go service registers itself with guest.Register in an init function of a file built for wasip1, and is built with `stateroom build`)", path, err)
	}
	return fmt.Errorf("cannot load %s: %w", path, err)
}

// closeStore closes the state file at the end of a command, logging an
// error: the rooms are saved by then, and the exit status is the server's.
func closeStore(st *store.Bolt, logger *slog.Logger) {
	if err := st.Close(); err != nil {
		logger.Error("closing the state file", "err", err)
	}
}

// exactArgs is cobra.ExactArgs with a message that says what to pass.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s; got %d arguments (see %s --help)", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs with a message that says what to pass.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return fmt.Errorf("%s takes at most %s; got %d arguments (see %s --help)", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
