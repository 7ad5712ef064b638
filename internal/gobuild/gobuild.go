// Package gobuild builds a Go service package into a Stateroom WebAssembly
// module: it runs
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
//
// on a package main that registers its service with package guest, then
// patches the result with internal/wasmpatch so that it carries the ABI's
// version globals and initializes itself at instantiation. The CLI's build
// and dev commands and the examples' tests use it.
package gobuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// Errors of [Build], wrapped with details.
var (
	// ErrNoGo: the go command was not found.
	ErrNoGo = errors.New("gobuild: no Go toolchain")
	// ErrNotMain: the directory holds no Go main package.
	ErrNotMain = errors.New("gobuild: not a Go main package")
	// ErrCompile: go build failed; the compiler's output went to
	// Options.Stderr, or is in the error when Stderr is nil.
	ErrCompile = errors.New("gobuild: go build failed")
)

// Options says what to build and where. The zero value builds the package in
// the current directory to <dir name>.wasm there.
type Options struct {
	// Dir is the directory of the service's package main. Default: the
	// current directory.
	Dir string
	// Output is the path of the module to write. Default: the directory's
	// base name plus ".wasm", inside Dir.
	Output string
	// StripDebug drops the symbol table and DWARF (-ldflags=-s -w): a
	// smaller module, but guest panics print no function names.
	// Default: false (keep them).
	StripDebug bool
	// LDFlags are more linker flags, e.g. "-X main.period=200ms" to set a
	// string variable of the service at build time. Default: none.
	LDFlags string
	// Go is the go command to run. Default: "go" from PATH.
	Go string
	// Env is added to the environment of the go command (after os.Environ,
	// so it wins), e.g. "GOFLAGS=-mod=mod". GOOS, GOARCH and CGO_ENABLED
	// are always set for the target. Default: nothing added.
	Env []string
	// Stdout and Stderr receive the go command's output as it prints it.
	// Default: nil, and a failed build's output is put into the error.
	Stdout, Stderr io.Writer
}

// Build compiles opts.Dir to a patched module at opts.Output. The module is
// written to a temporary file beside Output and renamed into place, so a
// failed build never leaves a half-written or unpatched module behind.
func Build(ctx context.Context, opts Options) error {
	goCmd := opts.Go
	if goCmd == "" {
		goCmd = "go"
	}
	goPath, err := exec.LookPath(goCmd)
	if err != nil {
		return fmt.Errorf("%w: %q is not on PATH (%v); install Go 1.24 or newer from https://go.dev/dl, or set the go command to use", ErrNoGo, goCmd, err)
	}
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	if fi, err := os.Stat(absDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory; pass the directory of the service's package main", ErrNotMain, dir)
	}
	out := opts.Output
	if out == "" {
		out = filepath.Join(absDir, filepath.Base(absDir)+".wasm")
	}
	env := append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	env = append(env, opts.Env...)

	if err := checkMain(ctx, goPath, absDir, env); err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("gobuild: output directory: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // gone after the rename; cleans up on failure

	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-o", tmpName}
	ldflags := opts.LDFlags
	if opts.StripDebug {
		ldflags = strings.TrimSpace("-s -w " + ldflags)
	}
	if ldflags != "" {
		// One -ldflags only: go build keeps the last one given.
		args = append(args, "-ldflags="+ldflags)
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, goPath, args...)
	cmd.Dir = absDir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout = opts.Stdout
	cmd.Stderr = &stderr
	if opts.Stderr != nil {
		cmd.Stderr = opts.Stderr
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("gobuild: building %s: %w", dir, ctx.Err())
		}
		if opts.Stderr != nil {
			return fmt.Errorf("%w for %s: %v (compiler output above)", ErrCompile, dir, err)
		}
		return fmt.Errorf("%w for %s: %v:\n%s", ErrCompile, dir, err, strings.TrimRight(stderr.String(), "\n"))
	}

	module, err := os.ReadFile(tmpName)
	if err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	patched, _, err := wasmpatch.Patch(module)
	if err != nil {
		return fmt.Errorf("gobuild: %s: %w", dir, err)
	}
	if err := os.WriteFile(tmpName, patched, 0o644); err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	return nil
}

// checkMain makes sure dir holds a main package for the target, so that a
// wrong directory gets advice instead of go build's terse
// "-buildmode=c-shared requires exactly one main package".
func checkMain(ctx context.Context, goPath, dir string, env []string) error {
	cmd := exec.CommandContext(ctx, goPath, "list", "-f", "{{.Name}}", ".")
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	name, err := cmd.Output()
	const advice = "a service module needs package main with an empty func main() and an init function that calls guest.Register (in a file with //go:build wasip1)"
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("gobuild: %w", ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "no Go files") || strings.Contains(msg, "build constraints exclude all Go files") {
			return fmt.Errorf("%w: %s has no Go files for GOOS=wasip1: %s", ErrNotMain, dir, advice)
		}
		// Anything else (a syntax error, a missing module) is the
		// compiler's to explain: go build reports it in full.
		return nil
	}
	if n := strings.TrimSpace(string(name)); n != "main" {
		return fmt.Errorf("%w: %s holds package %s: %s", ErrNotMain, dir, n, advice)
	}
	return nil
}
