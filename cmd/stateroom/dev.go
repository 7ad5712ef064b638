package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	// ServerInfo shows the room server's info records (a room ended, a
	// client was refused...) as serve does. Without it, set when
	// --log-level is given, dev shows the server's warnings and errors
	// only: a rebuild that closes many rooms is one line, not one per
	// room.
	ServerInfo bool
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
clients reconnect to it, and one line says how many. A save that changes only
comments (or blank lines) builds nothing, and a rebuild that produces the same
module (a new function nothing calls, say) swaps nothing: running rooms go on.
A failed build prints the compiler's errors and keeps the previous build
serving. The native entry point (main.go) is compiled too, output discarded,
so an error only "go build ." would show is reported as well.

Rooms keep their state across rebuilds and restarts, as under serve: a service
that implements stateroom.Snapshotter is saved to .stateroom/rooms.db in the
working directory (--state-dir moves it; --no-state turns it off), and a room
closed by a swap is restored by the new build. If the new build cannot read the
snapshot (its Restore fails), the snapshot is set aside and the room starts
afresh.

Static files (static_files in stateroom.toml, default "static") are served live
from the source directory: reload the page to see an edit. They are also
copied to dist/static, and the module written to dist/server.wasm, so that
"stateroom serve DIR" serves what dev served. A [client] package is rebuilt
for the browser on change and served at /client/.

The room server's own info records are left out unless --log-level is given.

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
			opts.ServerInfo = cmd.Flags().Changed("log-level")
			if err := applyProjectFlags(opts.Dir, cmd.Flags()); err != nil {
				return err
			}
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
	// nativeBroken: the last check of the native entry point failed.
	nativeBroken bool
	// code holds the codeSum of each Go file (and go.mod, go.sum) under
	// the watched trees as the last build read it: a change that keeps
	// a file's sum (a comment edited) needs no build.
	code map[string][sha256.Size]byte
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
	// Before the first build, like the watcher: a file saved during the
	// build differs from what is recorded, and is built again.
	s.recordCode(roots)

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
	built := err == nil
	if ctx.Err() != nil {
		return nil
	}
	s.syncStatic()
	clientDir := ""
	if p.clientDir != "" {
		clientDir = p.clientOut()
		if err := os.MkdirAll(clientDir, 0o755); err != nil {
			return err
		}
		s.rebuildClient(ctx)
	}
	serverLogger := logger
	if !opts.ServerInfo {
		serverLogger = slog.New(minLevel{Handler: logger.Handler(), level: slog.LevelWarn})
	}
	so := opts.Server.serverOptions(serverLogger, p.staticDir, clientDir)
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
	con.Printf("serving %s on %s (%s)%s%s", rel(p.dir), httpURL, wsURL, opts.Server.stateNote(),
		pageNote(p.staticDir, "the project has no static files: add static/index.html"))
	con.Printf("watching %s for changes; Ctrl-C stops", strings.Join(relAll(roots), ", "))
	if built {
		// After the ready line: the page can open while it compiles.
		s.checkNative(wctx)
	}

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
	var comments []string // changed files whose code did not change
	var statics []string  // changed static files
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
			statics = append(statics, rel(path))
		case isGoSource(path) && !s.codeChanged(path):
			comments = append(comments, rel(path))
		case s.p.clientDir != "" && within(path, s.p.clientDir) && isGoSource(path):
			client = true
		case isGoSource(path):
			// A change to the service, or to a package both use.
			service = true
			client = s.p.clientDir != ""
		}
	}
	if len(comments) > 0 && !service && !client {
		s.con.Printf("only comments changed in %s: nothing to build; running rooms keep running (a guest panic's line numbers are those of the running build)", strings.Join(comments, ", "))
	}
	if len(statics) > 0 {
		// Copied before the line is printed: once it is, dist/ is current.
		s.syncStatic()
		for _, path := range statics {
			s.con.Printf("%s changed (static files are served live: reload the page)", path)
		}
	}
	if service {
		m, err := s.rebuildService(ctx)
		if m != nil {
			s.swap(m)
		}
		if err == nil {
			s.checkNative(ctx)
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
			s.con.Warnf("%v", err)
			s.keepingPrevious()
		}
		return nil, err
	}
	sum, err := moduleSum(s.p.serviceModule())
	if err != nil {
		s.con.Warnf("reading the build: %v", err)
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
	m, err := loadModule(ctx, s.p.serviceModule(), hostOpts)
	if err != nil {
		if ctx.Err() == nil {
			s.con.Warnf("%v", moduleError(rel(s.p.serviceModule()), err))
			s.keepingPrevious()
		}
		return nil, err
	}
	if ctx.Err() != nil {
		m.Close(context.Background()) // compiled as Ctrl-C came: nothing to swap into
		return nil, ctx.Err()
	}
	s.con.Printf("compiled in %s", time.Since(start).Round(time.Millisecond))
	s.sum = sum // both callers make m the running module
	return m, nil
}

// swap makes m the module new rooms use and closes the one it replaces.
// SwapFactory has closed the rooms running on the old module (their
// clients got 1012, and with a store each room's last snapshot was taken,
// for the new build to restore) before the old module's instances are
// closed. It says so in one line, however many rooms and clients.
func (s *devSession) swap(m *wasmhost.Module) {
	old := s.module
	s.module = m
	rooms := s.srv.Rooms()
	clients := 0
	for _, r := range rooms {
		clients += r.Clients
	}
	s.srv.SwapFactory(m)
	if old != nil {
		old.Close(context.Background())
	}
	if len(rooms) == 0 {
		s.con.Printf("swapped in the new build; no rooms were running")
		return
	}
	kept := "a service that snapshots keeps its state"
	if !s.stored {
		kept = "their state is lost: --no-state"
	}
	s.con.Printf("swapped in the new build: closed %s (%s) with code 1012, so they reconnect to it (%s)",
		plural(len(rooms), "room"), plural(clients, "client"), kept)
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
		s.con.Warnf("%v", err)
	}
}

// recordCode records the codeSum of every Go file under roots.
func (s *devSession) recordCode(roots []string) {
	s.code = make(map[string][sha256.Size]byte)
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return nil // unreadable: its change will be built
			case d.IsDir() && path != root && skipDir(d.Name()):
				return filepath.SkipDir
			case !d.IsDir() && isGoSource(path):
				if sum, ok := codeSum(path); ok {
					s.code[path] = sum
				}
			}
			return nil
		})
	}
}

// codeChanged records the codeSum of path, a changed Go file, and reports
// whether it differs from the one recorded: true for a new, removed or
// unreadable file, or one that does not scan.
func (s *devSession) codeChanged(path string) bool {
	old, had := s.code[path]
	sum, ok := codeSum(path)
	if !ok {
		delete(s.code, path)
		return true
	}
	s.code[path] = sum
	return !had || sum != old
}

// checkNative reports an error of the native entry point (see
// project.checkNative): the module still serves, so it is a warning.
func (s *devSession) checkNative(ctx context.Context) {
	err := s.p.checkNative(ctx, s.opts.Stderr)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		s.nativeBroken = true
		s.con.Warnf("%v; the module built from the wasip1 files still serves", err)
	case s.nativeBroken:
		s.nativeBroken = false
		s.con.Printf("the native build of %s compiles again", rel(s.p.serviceDir))
	}
}

// syncStatic copies the static files to dist/static, where `stateroom
// serve` looks for them; dev itself serves them from the source.
func (s *devSession) syncStatic() {
	if _, err := s.p.syncStatic(); err != nil {
		s.con.Warnf("%v; stateroom serve would find stale static files in %s", err, rel(s.p.distStatic()))
	}
}

// minLevel is a slog.Handler that drops the records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

// Enabled reports whether a record at l passes both the floor and the
// wrapped handler.
func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the floor on the derived handler.
func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), level: h.level}
}

// WithGroup keeps the floor on the derived handler.
func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), level: h.level}
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
