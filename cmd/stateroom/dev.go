package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// DevOptions are the inputs of `stateroom dev`.
type DevOptions struct {
	// Dir is the project directory (default ".").
	Dir string
	// Debounce is the quiet time after a change before a rebuild
	// (--debounce, default 150ms).
	Debounce time.Duration
	// Server holds the server, sandbox and log flags.
	Server ServerFlags
	// Stderr receives progress, logs and the compiler's output.
	Stderr io.Writer
}

// NewCmdDev returns `stateroom dev`. runF does the work; nil means runDev.
func NewCmdDev(runF func(context.Context, *DevOptions) error) *cobra.Command {
	opts := &DevOptions{}
	if runF == nil {
		runF = runDev
	}
	cmd := &cobra.Command{
		Use:   "dev [DIR]",
		Short: "Build, serve and rebuild a service as you edit it",
		Long: `Build the service in DIR (default "."), serve it on 127.0.0.1:8080, and watch
its Go files: on a change it rebuilds and swaps the module in. New rooms use the
new build; running rooms are closed with code 1012 (service restart) so their
clients reconnect to it. A rebuild that produces the same module (an edit to a
comment, say; only the Go build id differs) swaps nothing and closes nothing. A failed build prints the
compiler's errors and keeps the previous build serving.

Rooms keep their state across rebuilds and restarts, as under serve: a service
that implements stateroom.Snapshotter is saved to .stateroom/rooms.db in the
working directory (--state-dir moves it; --no-state turns it off), and a room
closed by a swap is restored by the new build. If the new build cannot read the
snapshot (its Restore fails), the snapshot is set aside and the room starts
afresh.

Static files (static_files in stateroom.toml, default "static") are served live
from the source directory: reload the page to see an edit. A [client] package
is rebuilt for the browser on change and served at /client/.

Browsers may connect from http://localhost:PORT, http://127.0.0.1:PORT and the
--host address, plus any --allowed-origin. dev takes every flag of serve.`,
		Example: `  stateroom dev
  stateroom dev ./examples/counter -p 9000`,
		Args: maxArgs(1, "one directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.Stderr = cmd.ErrOrStderr()
			if err := opts.Server.complete(cmd.Flags()); err != nil {
				return err
			}
			if opts.Debounce <= 0 {
				return fmt.Errorf("--debounce %v must be positive", opts.Debounce)
			}
			return runF(cmd.Context(), opts)
		},
	}
	opts.Server.register(cmd.Flags())
	cmd.Flags().DurationVar(&opts.Debounce, "debounce", defaultDebounce, "quiet time after a change before rebuilding")
	return cmd
}

// devSession is one run of `stateroom dev`: the project, the server and the
// module it currently serves. Only runDev's goroutine touches it.
type devSession struct {
	p      *project
	opts   *DevOptions
	con    *console
	logger *slog.Logger
	srv    *server.Server
	module *wasmhost.Module  // nil until a build loads
	sum    [sha256.Size]byte // of the module file module was loaded from
	stored bool              // rooms are saved: a swap keeps their state
}

// errNotBuilt answers connections while the service has never built.
var errNotBuilt = errors.New("the service has not built yet: fix the compiler errors stateroom dev printed and save")

// runDev builds, serves and rebuilds on change until ctx is done.
func runDev(ctx context.Context, opts *DevOptions) error {
	logger, err := opts.Server.Log.logger(opts.Stderr)
	if err != nil {
		return err
	}
	con := newConsole(opts.Stderr, logger, opts.Server.Log.Format == "json")
	p, err := loadProject(opts.Dir)
	if err != nil {
		return err
	}
	// Listen first: a port in use should fail before a build of seconds.
	ln, err := opts.Server.listen()
	if err != nil {
		return err
	}
	defer ln.Close() // no-op once served; closes it on an early return
	// The state file next, for the same reason: another process holding
	// it is an error to see before waiting for a build.
	st, err := opts.Server.openStore()
	if err != nil {
		return err
	}
	if st != nil {
		// Deferred before the server starts, so it runs after the server
		// has shut down and saved every room.
		defer closeStore(st, logger)
	}

	// Watch before the first build, so an edit saved during it is not
	// missed. Two goroutines, both owned here: the watcher and, later, the
	// HTTP server. Cancelling wctx stops them; runDev returns only after
	// both ended.
	roots := []string{p.serviceDir}
	if p.clientDir != "" && !within(p.clientDir, p.serviceDir) {
		roots = append(roots, p.clientDir)
	}
	if p.staticDir != "" && !within(p.staticDir, p.serviceDir) {
		roots = append(roots, p.staticDir)
	}
	w, err := newWatcher(roots, opts.Debounce, func(err error) { logger.Warn("watching files", "err", err) })
	if err != nil {
		return fmt.Errorf("watching %s: %w", rel(p.dir), err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := make(chan []string)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); w.run(wctx, changes) }()
	defer func() { cancel(); <-watchDone }()

	s := &devSession{p: p, opts: opts, con: con, logger: logger, stored: st != nil}
	defer s.closeModule()

	var factory stateroom.Factory = stateroom.FactoryFunc(func(string) (stateroom.Service, error) {
		return nil, errNotBuilt
	})
	m, err := s.rebuildService(ctx)
	switch {
	case errors.Is(err, gobuild.ErrNoGo), errors.Is(err, gobuild.ErrNotMain):
		// No edit of the service can fix these: stop with the advice.
		return err
	case m != nil:
		s.module, factory = m, m
	}
	if ctx.Err() != nil {
		return nil
	}
	clientDir := ""
	if p.clientDir != "" {
		clientDir = p.clientOut()
		if err := os.MkdirAll(clientDir, 0o755); err != nil {
			return err
		}
		s.rebuildClient(ctx)
	}
	so := opts.Server.serverOptions(logger, p.staticDir, clientDir)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	so.AllowedOrigins = devOrigins(&opts.Server, port)
	if st != nil {
		so.Store = st
	}
	s.srv, err = server.New(factory, so)
	if err != nil {
		return err
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- opts.Server.serve(wctx, ln, s.srv, logger) }()

	httpURL, wsURL := urls(ln, opts.Server.TLSCert != "")
	con.Printf("serving %s on %s (%s)%s", rel(p.dir), httpURL, wsURL, opts.Server.stateNote())
	con.Printf("watching %s for changes; Ctrl-C stops", strings.Join(relAll(roots), ", "))

	for {
		select {
		case err := <-serveErr:
			// Either the context was cancelled (a clean stop) or serving
			// failed; either way the session is over.
			cancel()
			if ctx.Err() != nil && err == nil {
				con.Printf("stopped")
			}
			return err
		case batch := <-changes:
			s.handle(wctx, batch)
		}
	}
}

// handle rebuilds what a batch of changes touched.
func (s *devSession) handle(ctx context.Context, batch []string) {
	var service, client bool
	stateDir := ""
	if !s.opts.Server.NoState {
		stateDir, _ = filepath.Abs(s.opts.Server.StateDir)
	}
	for _, path := range batch {
		switch {
		case stateDir != "" && within(path, stateDir):
			// The rooms' own saves, when --state-dir is inside a watched
			// tree under a name the watcher does not skip.
		case s.p.staticDir != "" && within(path, s.p.staticDir):
			s.con.Printf("%s changed (static files are served live: reload the page)", rel(path))
		case s.p.clientDir != "" && within(path, s.p.clientDir) && isGoSource(path):
			client = true
		case isGoSource(path):
			// A change to the service, or to a package both use.
			service = true
			client = s.p.clientDir != ""
		}
	}
	if service {
		if m, _ := s.rebuildService(ctx); m != nil {
			s.swap(m)
		}
	}
	if client {
		s.rebuildClient(ctx)
	}
}

// rebuildService builds and loads the service module, reporting progress
// and errors. On failure it returns a nil module (the caller keeps what it
// serves) and the error, already reported.
func (s *devSession) rebuildService(ctx context.Context) (*wasmhost.Module, error) {
	if err := s.p.buildService(ctx, s.con, s.opts.Stderr); err != nil {
		// Before the server starts, these two end the session and are
		// reported once, by the caller.
		fatal := s.srv == nil && (errors.Is(err, gobuild.ErrNoGo) || errors.Is(err, gobuild.ErrNotMain))
		if ctx.Err() == nil && !fatal {
			s.con.Printf("%v", err)
			s.keepingPrevious()
		}
		return nil, err
	}
	sum, err := moduleSum(s.p.serviceModule())
	if err != nil {
		s.con.Printf("reading the build: %v", err)
		s.keepingPrevious()
		return nil, err
	}
	if s.module != nil && sum == s.sum {
		// Swapping in the same code would only cost every room a
		// restart: its clients a reconnect, a service without snapshots
		// its state.
		s.con.Printf("the new build of %s has the same code as the running one; nothing to swap", rel(s.p.serviceModule()))
		return nil, nil
	}
	start := time.Now()
	s.con.Printf("compiling %s for the host ...", rel(s.p.serviceModule()))
	hostOpts := s.opts.Server.hostOptions(s.logger)
	if s.opts.Server.CacheDir == "" {
		// Each build is new code: a compilation cache would only fill up
		// with builds that never run again.
		hostOpts.DisableCache = true
	}
	m, err := wasmhost.Load(ctx, s.p.serviceModule(), hostOpts)
	if err != nil {
		if ctx.Err() == nil {
			s.con.Printf("%v", moduleError(rel(s.p.serviceModule()), err))
			s.keepingPrevious()
		}
		return nil, err
	}
	s.con.Printf("compiled in %s", time.Since(start).Round(time.Millisecond))
	s.sum = sum // both callers make m the running module
	return m, nil
}

// swap makes m the module new rooms use and closes the one it replaces.
// SwapFactory has closed the rooms running on the old module (their
// clients got 1012, and with a store each room's last snapshot was taken,
// for the new build to restore) before the old module's instances are
// closed.
func (s *devSession) swap(m *wasmhost.Module) {
	old := s.module
	s.module = m
	rooms := len(s.srv.Rooms())
	s.srv.SwapFactory(m)
	if old != nil {
		old.Close(context.Background())
	}
	kept := "a service that snapshots keeps its state"
	if !s.stored {
		kept = "their state is lost: --no-state"
	}
	s.con.Printf("swapped in the new build: new rooms use it; %d running rooms closed with code 1012 so their clients reconnect (%s)", rooms, kept)
}

// keepingPrevious tells the user what is serving after a failed build.
func (s *devSession) keepingPrevious() {
	if s.module != nil {
		s.con.Printf("still serving the previous build; fix the errors and save to rebuild")
	} else {
		s.con.Printf("no build to serve yet; fix the errors and save to rebuild")
	}
}

// rebuildClient rebuilds the browser package, reporting errors.
func (s *devSession) rebuildClient(ctx context.Context) {
	if err := s.p.buildClient(ctx, s.con, s.opts.Stderr); err != nil && ctx.Err() == nil {
		s.con.Printf("%v", err)
	}
}

// closeModule closes the current module at the end of the session.
func (s *devSession) closeModule() {
	if s.module != nil {
		s.module.Close(context.Background())
	}
}

// devOrigins is what dev allows to open a WebSocket: the --allowed-origin
// flags plus the server's own address under each name a developer's
// browser may use (localhost, 127.0.0.1 and --host), so the page works
// whichever name it was opened with, even when it dials a fixed one. An
// allow list replaces the server's same-origin default, hence the explicit
// entries.
func devOrigins(f *ServerFlags, port string) []string {
	scheme := "http://"
	if f.TLSCert != "" {
		scheme = "https://"
	}
	hosts := []string{"localhost", "127.0.0.1"}
	if ip := net.ParseIP(f.Host); f.Host != "" && (ip == nil || !ip.IsUnspecified()) && !slices.Contains(hosts, f.Host) {
		hosts = append(hosts, f.Host)
	}
	out := slices.Clone(f.AllowedOrigins)
	for _, h := range hosts {
		out = append(out, scheme+net.JoinHostPort(h, port))
	}
	return out
}

// isGoSource says whether a change to path can change a build. Test files
// cannot: rebuilding for them would close every room with 1012 for
// nothing while the user edits the service's tests.
func isGoSource(path string) bool {
	base := filepath.Base(path)
	if strings.HasSuffix(base, "_test.go") {
		return false
	}
	return strings.HasSuffix(base, ".go") || base == "go.mod" || base == "go.sum"
}

// within says whether path is dir or inside it.
func within(path, dir string) bool {
	r, err := filepath.Rel(dir, path)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// relAll applies rel to each path.
func relAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = rel(p)
	}
	return out
}
