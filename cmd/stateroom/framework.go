package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// modulePath is the framework's module path, which scaffolds import.
const modulePath = "github.com/stateroom-go/stateroom"

// sourceDir is the framework's source directory recorded at link time, for
// builds where the compiler's file paths are not real (-trimpath):
//
//	go build -ldflags "-X main.sourceDir=$PWD" ./cmd/stateroom
var sourceDir string

// goModule is the part of `go mod edit -json` a scaffold needs.
type goModule struct {
	Module struct{ Path string }
	Go     string
	// Require lists the framework's own requirements: a scaffold lists
	// them too, so it builds from the module cache without a network.
	Require []struct {
		Path    string
		Version string
	}
}

// findFramework locates the framework source a scaffold's replace
// directive points at, in this order: the --framework flag, the
// STATEROOM_SOURCE environment variable, the directory recorded at link
// time, the source tree this binary was compiled from. A flag or variable
// that names a wrong directory is an error rather than skipped: the user
// asked for it.
func findFramework(ctx context.Context, flag string) (dir string, mod *goModule, err error) {
	try := func(dir, from string) (string, *goModule, error) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", nil, err
		}
		m, err := readGoMod(ctx, filepath.Join(abs, "go.mod"))
		if err != nil {
			return "", nil, fmt.Errorf("%s %s: %w", from, dir, err)
		}
		if m.Module.Path != modulePath {
			return "", nil, fmt.Errorf("%s %s holds module %s, not %s; point it at the Stateroom source", from, dir, m.Module.Path, modulePath)
		}
		return abs, m, nil
	}
	if flag != "" {
		return try(flag, "--framework")
	}
	if env := os.Getenv("STATEROOM_SOURCE"); env != "" {
		return try(env, "STATEROOM_SOURCE")
	}
	var candidates []string
	if sourceDir != "" {
		candidates = append(candidates, sourceDir)
	}
	// This file is cmd/stateroom/framework.go in the framework's tree;
	// with -trimpath the path is module-relative and fails the check.
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", ".."))
	}
	for _, c := range candidates {
		if d, m, err := try(c, "source"); err == nil {
			return d, m, nil
		}
	}
	return "", nil, errors.New("cannot find the Stateroom source, which the new service's go.mod must point at (the module is not published); pass --framework DIR or set STATEROOM_SOURCE to the directory holding its go.mod")
}

// readGoMod reads a go.mod with `go mod edit -json`: the go command's own
// parser, so no go.mod parser of ours can disagree with it.
func readGoMod(ctx context.Context, path string) (*goModule, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no go.mod there (%w)", err)
	}
	goPath, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("no go command on PATH; install Go from https://go.dev/dl")
	}
	out, err := exec.CommandContext(ctx, goPath, "mod", "edit", "-json", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("reading go.mod: %s", ee.Stderr)
		}
		return nil, fmt.Errorf("reading go.mod: %w", err)
	}
	var m goModule
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("reading go.mod: %w", err)
	}
	return &m, nil
}
