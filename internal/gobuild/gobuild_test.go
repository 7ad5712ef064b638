package gobuild_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom/internal/gobuild"
	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// probeDir is a real guest service (shared with package guest's tests).
var probeDir = filepath.Join("..", "..", "guest", "testdata", "probe")

func TestBuild(t *testing.T) {
	out := filepath.Join(t.TempDir(), "probe.wasm")
	var sizes []int
	for _, strip := range []bool{false, true} {
		if err := gobuild.Build(context.Background(), gobuild.Options{Dir: probeDir, Output: out, StripDebug: strip}); err != nil {
			t.Fatal(err)
		}
		module, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// Already patched: the globals are there.
		if _, _, err := wasmpatch.Patch(module); !errors.Is(err, wasmpatch.ErrPatched) {
			t.Errorf("strip=%v: output is not patched: %v", strip, err)
		}
		sizes = append(sizes, len(module))
	}
	if sizes[1] >= sizes[0] {
		t.Errorf("StripDebug did not shrink the module: %d bytes, %d without it", sizes[1], sizes[0])
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestBuildLDFlags sets a string variable at build time, alone and with
// StripDebug (go build keeps only the last -ldflags, so they must be one).
func TestBuildLDFlags(t *testing.T) {
	for _, strip := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "probe.wasm")
		const value = "set-by-ldflags-1234"
		err := gobuild.Build(context.Background(), gobuild.Options{Dir: probeDir, Output: out, StripDebug: strip, LDFlags: "-X main.buildNote=" + value})
		if err != nil {
			t.Fatal(err)
		}
		module, _ := os.ReadFile(out)
		if !strings.Contains(string(module), value) {
			t.Errorf("strip=%v: the module does not contain the value set with -X", strip)
		}
	}
}

// TestBuildDefaultOutput builds a copy of the probe with no Output: the
// module lands in the package's directory, named after it. The copy lives
// in a temporary module that requires this one through a replace directive,
// so that nothing is written into the source tree and runs sharing a
// checkout (go test -count=N, CI jobs side by side) do not collide.
func TestBuildDefaultOutput(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	pkg := filepath.Join(mod, "probecopy")
	if err := os.CopyFS(pkg, os.DirFS(probeDir)); err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/probecopy\n\ngo 1.26.0\n\n" +
		"require github.com/stateroom-go/stateroom v0.0.0\n\n" +
		"replace github.com/stateroom-go/stateroom => " + strconv.Quote(root) + "\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	// This module's checksums cover everything the copy can need, so the
	// build works offline and needs no go mod tidy.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	// GOWORK=off: a workspace the caller has set must not take the
	// temporary module out of module mode.
	if err := gobuild.Build(context.Background(), gobuild.Options{Dir: pkg, Env: []string{"GOWORK=off"}}); err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(filepath.Join(pkg, "probecopy.wasm"))
	if err != nil {
		t.Fatalf("default output: %v", err)
	}
	if _, _, err := wasmpatch.Patch(module); !errors.Is(err, wasmpatch.ErrPatched) {
		t.Errorf("the default output is not a patched module: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(pkg, ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   gobuild.Options
		want   error
		says   []string
		stderr string // what the compiler printed, passed through
	}{
		{"compile error in the error", gobuild.Options{Dir: "testdata/broken"}, gobuild.ErrCompile, []string{"undefined: undefinedOnPurpose", "main.go:5"}, ""},
		{"compile error to Stderr", gobuild.Options{Dir: "testdata/broken", Stderr: new(strings.Builder)}, gobuild.ErrCompile, []string{"compiler output above"}, "./main.go:5:15: undefined: undefinedOnPurpose"},
		{"not main", gobuild.Options{Dir: "testdata/lib"}, gobuild.ErrNotMain, []string{"package lib", "guest.Register"}, ""},
		{"no Go files", gobuild.Options{Dir: "testdata/empty"}, gobuild.ErrNotMain, []string{"no Go files", "guest.Register"}, ""},
		{"no such directory", gobuild.Options{Dir: "testdata/nonexistent"}, gobuild.ErrNotMain, []string{"not a directory"}, ""},
		{"no guest", gobuild.Options{Dir: "testdata/noguest"}, wasmpatch.ErrNoGuest, []string{"guest.Register"}, ""},
		{"no go command", gobuild.Options{Dir: probeDir, Go: "no-such-go-command"}, gobuild.ErrNoGo, []string{"no-such-go-command", "install Go"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.wasm")
			tc.opts.Output = out
			err := gobuild.Build(context.Background(), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if tc.stderr != "" && !strings.Contains(tc.opts.Stderr.(*strings.Builder).String(), tc.stderr) {
				t.Errorf("stderr %q does not carry %q", tc.opts.Stderr, tc.stderr)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
				t.Errorf("a failed build left %v", entries)
			}
		})
	}
}

func TestBuildNoGoOnPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := gobuild.Build(context.Background(), gobuild.Options{Dir: probeDir, Output: filepath.Join(t.TempDir(), "x.wasm")})
	if !errors.Is(err, gobuild.ErrNoGo) || !strings.Contains(err.Error(), "https://go.dev/dl") {
		t.Errorf("got %v, want ErrNoGo with advice", err)
	}
}

func TestBuildCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := gobuild.Build(ctx, gobuild.Options{Dir: probeDir, Output: filepath.Join(t.TempDir(), "x.wasm")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
