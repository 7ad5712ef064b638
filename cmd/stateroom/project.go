package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stateroom-go/stateroom/internal/config"
	"github.com/stateroom-go/stateroom/internal/gobuild"
)

// project is a service directory: its stateroom.toml and the paths derived
// from it. build and dev share it, so both read the file the same way.
type project struct {
	dir        string // the directory given, absolute
	cfg        *config.Config
	serviceDir string // the service's package main
	staticDir  string // "" when the project has none
	clientDir  string // the browser package; "" when none
	distDir    string // dir/dist
	noPreinit  bool   // build --no-preinit; see preinitService
}

// loadProject reads dir/stateroom.toml (defaults when missing) and checks
// the directories it names.
func loadProject(dir string) (*project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory; pass the directory of a service (the one holding stateroom.toml or its Go package main)", dir)
	}
	cfg, err := config.Load(abs)
	if err != nil {
		return nil, err
	}
	p := &project{dir: abs, cfg: cfg, distDir: filepath.Join(abs, "dist")}
	p.serviceDir = filepath.Join(abs, filepath.FromSlash(cfg.ServicePackage))
	if st, err := os.Stat(p.serviceDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: [service] package = %q: no such directory %s", p.configName(), cfg.ServicePackage, p.serviceDir)
	}
	if p.staticDir, err = cfg.StaticDir(abs); err != nil {
		return nil, err
	}
	if cfg.ClientPackage != "" {
		p.clientDir = filepath.Join(abs, filepath.FromSlash(cfg.ClientPackage))
		if st, err := os.Stat(p.clientDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s: [client] package = %q: no such directory %s", p.configName(), cfg.ClientPackage, p.clientDir)
		}
	}
	return p, nil
}

// configName names the project file for messages.
func (p *project) configName() string {
	if p.cfg.File != "" {
		return p.cfg.File
	}
	return filepath.Join(p.dir, config.FileName) + " (defaults)"
}

// serviceModule is where the service's module is written.
func (p *project) serviceModule() string { return filepath.Join(p.distDir, "server.wasm") }

// clientOut is the directory of the browser build, served at /client/.
func (p *project) clientOut() string { return filepath.Join(p.distDir, "client") }

// rel shows a path relative to the working directory when that is shorter.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	r, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(r, "..") {
		return path
	}
	if r == "." {
		return "."
	}
	return "." + string(filepath.Separator) + r
}

// buildService compiles the service package to dist/server.wasm. The
// compiler's output goes to stderr as the compiler printed it.
func (p *project) buildService(ctx context.Context, con *console, stderr io.Writer) error {
	if err := os.MkdirAll(p.distDir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	con.Printf("building service %s ...", rel(p.serviceDir))
	defer progress(con, "service", start)()
	err := gobuild.Build(ctx, gobuild.Options{
		Dir:    p.serviceDir,
		Output: p.serviceModule(),
		Stdout: stderr,
		Stderr: stderr,
	})
	if err != nil {
		return err // gobuild's errors say what to do, or point at the compiler's output
	}
	if err := p.preinitService(ctx, con); err != nil {
		return err
	}
	size := ""
	if st, err := os.Stat(p.serviceModule()); err == nil {
		size = fmt.Sprintf(", %.1f MB", float64(st.Size())/1e6)
	}
	con.Printf("built %s in %s%s", rel(p.serviceModule()), time.Since(start).Round(10*time.Millisecond), size)
	return nil
}

// buildClient compiles the [client] package for the browser (GOOS=js
// GOARCH=wasm) to dist/client/client.wasm beside Go's wasm_exec.js.
func (p *project) buildClient(ctx context.Context, con *console, stderr io.Writer) error {
	if p.clientDir == "" {
		return nil
	}
	goPath, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: no go command on PATH; install Go from https://go.dev/dl", gobuild.ErrNoGo)
	}
	out := p.clientOut()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	con.Printf("building client %s ...", rel(p.clientDir))
	defer progress(con, "client", start)()
	tmp := filepath.Join(out, ".client.wasm.tmp")
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, goPath, "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = p.clientDir
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w for client %s: %v (compiler output above)", gobuild.ErrCompile, rel(p.clientDir), err)
	}
	if err := os.Rename(tmp, filepath.Join(out, "client.wasm")); err != nil {
		return err
	}
	if err := copyWasmExec(ctx, goPath, out); err != nil {
		return err
	}
	con.Printf("built %s in %s", rel(filepath.Join(out, "client.wasm")), time.Since(start).Round(10*time.Millisecond))
	return nil
}

// progressEvery is how often a long build says it is still running. A
// first build with a cold cache compiles the standard library and can take
// a minute; silence that long looks like a hang.
const progressEvery = 5 * time.Second

// progress prints "still building" lines until the returned stop function
// is called; stop waits for the printing goroutine to end.
func progress(con *console, what string, start time.Time) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				con.Printf("still building the %s (%s) ...", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-ended }
}

// copyWasmExec copies the JavaScript glue of the Go toolchain that built
// the client; it must match the compiler, so it is never vendored.
func copyWasmExec(ctx context.Context, goPath, dst string) error {
	root, err := exec.CommandContext(ctx, goPath, "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	goroot := strings.TrimSpace(string(root))
	for _, sub := range []string{"lib/wasm", "misc/wasm"} { // misc/wasm before Go 1.24
		src := filepath.Join(goroot, filepath.FromSlash(sub), "wasm_exec.js")
		if _, err := os.Stat(src); err == nil {
			return copyFile(src, filepath.Join(dst, "wasm_exec.js"))
		}
	}
	return fmt.Errorf("wasm_exec.js not found in %s/lib/wasm or misc/wasm; is the Go installation complete?", goroot)
}

// copyStatic replaces dist/static with a copy of the static directory and
// says how many files it copied.
func (p *project) copyStatic(con *console) error {
	n, err := p.syncStatic()
	if err != nil {
		return err
	}
	if p.staticDir != "" {
		con.Printf("copied %s from %s to %s", plural(n, "static file"), rel(p.staticDir), rel(p.distStatic()))
	}
	return nil
}

// distStatic is where build and dev put the static files for serve.
func (p *project) distStatic() string { return filepath.Join(p.distDir, "static") }

// syncStatic replaces dist/static with a copy of the static directory
// (removes it when the project has none) and returns the number of files
// copied: dist/ then holds everything `stateroom serve` needs.
func (p *project) syncStatic() (int, error) {
	dst := p.distStatic()
	if err := os.RemoveAll(dst); err != nil {
		return 0, err
	}
	if p.staticDir == "" {
		return 0, nil
	}
	n := 0
	err := filepath.WalkDir(p.staticDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(p.staticDir, path)
		target := filepath.Join(dst, r)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			n++
			return copyFile(path, target)
		}
		return nil // sockets, symlinks to elsewhere: not part of a site
	})
	if err != nil {
		return n, fmt.Errorf("copying static files: %w", err)
	}
	return n, nil
}

// checkNative compiles the service's native entry point (go build . for
// this machine, output discarded): the module is built from the wasip1
// files, so an error in a file only the native build compiles (main.go
// calling a renamed function) would otherwise go unnoticed until `go run
// .` or `go test`. The compiler's output goes to stderr. A package with no
// native files has nothing to check.
func (p *project) checkNative(ctx context.Context, stderr io.Writer) error {
	goPath, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: no go command on PATH; install Go from https://go.dev/dl", gobuild.ErrNoGo)
	}
	cmd := exec.CommandContext(ctx, goPath, "build", "-o", os.DevNull, ".")
	cmd.Dir = p.serviceDir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := out.String()
		if strings.Contains(msg, "build constraints exclude all Go files") || strings.Contains(msg, "no Go files") {
			return nil
		}
		stderr.Write(out.Bytes())
		return fmt.Errorf("the native build of %s (go build .) fails: %v (compiler output above)", rel(p.serviceDir), err)
	}
	return nil
}

// copyFile copies one regular file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// applyProjectFlags sets the flags that dir/stateroom.toml sets ([state],
// [limits]) and the command line left alone: the command line wins over the
// file, the file over the defaults.
func applyProjectFlags(dir string, fs *pflag.FlagSet) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	return cfg.ApplyFlags(fs)
}
