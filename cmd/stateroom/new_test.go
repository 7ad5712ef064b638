package main

import (
	"bytes"
	"context"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNew checks the scaffold `stateroom new` wrote (builtScaffold ran it
// offline and built it; TestServe serves that build).
func TestNew(t *testing.T) {
	dir := builtScaffold(t)
	for _, want := range []string{"cd counter", "stateroom dev", "Stateroom from " + frameRoot} {
		if !strings.Contains(builtLog, want) {
			t.Errorf("output of new does not contain %q:\n%s", want, builtLog)
		}
	}
	for _, f := range []string{"counter.go", "counter_test.go", "main.go", "main_wasip1.go", "static/index.html", "stateroom.toml", "README.md", "go.mod", "go.sum", ".gitignore"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("scaffold lacks %s: %v", f, err)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"module counter\n", "replace " + modulePath + " => " + frameRoot} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod does not contain %q:\n%s", want, gomod)
		}
	}
	for _, f := range []string{"counter.go", "counter_test.go", "main.go", "main_wasip1.go"} {
		src, _ := os.ReadFile(filepath.Join(dir, f))
		if formatted, err := format.Source(src); err != nil || !bytes.Equal(formatted, src) {
			t.Errorf("%s is not gofmt-formatted (%v)", f, err)
		}
	}

	// The native entry point builds offline too (and so keeps up with the
	// server package's API).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(t.TempDir(), "native"), ".")
	cmd.Dir = dir
	cmd.Env = offlineEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("native go build of the scaffold: %v\n%s", err, out)
	}
}

// TestNewServiceTests runs the new service's own unit tests (offline, as
// TestNew builds it), and checks that they catch a broken counter.
func TestNewServiceTests(t *testing.T) {
	out, err := goTest(t, builtScaffold(t))
	if err != nil {
		t.Fatalf("go test in the new service: %v\n%s", err, out)
	}
	// "ok" alone would also be the verdict on a package with no tests.
	for _, name := range []string{"TestCounterShared", "TestCounterIgnoresOtherMessages", "TestCounterSnapshot", "TestCounterCountsClients"} {
		if !strings.Contains(out, "--- PASS: "+name) {
			t.Errorf("go test did not pass %s:\n%s", name, out)
		}
	}

	broken := copyOfScaffold(t)
	editFile(t, filepath.Join(broken, "counter.go"), "c.value++", "c.value += 2")
	out, err = goTest(t, broken)
	if err == nil || !strings.Contains(out, "--- FAIL: TestCounterShared") {
		t.Fatalf("go test of a counter that counts by 2: err=%v, want TestCounterShared to fail\n%s", err, out)
	}

	// A Restore that does not restore what Snapshot saved is caught too.
	lossy := copyOfScaffold(t)
	editFile(t, filepath.Join(lossy, "counter.go"), "c.value = v", "c.value = v + 1")
	out, err = goTest(t, lossy)
	if err == nil || !strings.Contains(out, "--- FAIL: TestCounterSnapshot") {
		t.Fatalf("go test of a counter whose Restore is off by one: err=%v, want TestCounterSnapshot to fail\n%s", err, out)
	}

	// So is a counter that forgets the clients a woken room kept.
	forgetful := copyOfScaffold(t)
	editFile(t, filepath.Join(forgetful, "counter.go"), "c.clients[id] = struct{}{}", "_ = id")
	out, err = goTest(t, forgetful)
	if err == nil || !strings.Contains(out, "--- FAIL: TestCounterCountsClients") {
		t.Fatalf("go test of a counter whose Init ignores InitEvent.Clients: err=%v, want TestCounterCountsClients to fail\n%s", err, out)
	}
}

// goTest runs `go test -v` in dir, offline, and returns its output.
func goTest(t *testing.T, dir string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-v", "-count=1", ".")
	cmd.Dir = dir
	cmd.Env = offlineEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestScaffoldPageIsTheDemo keeps the scaffold's page the same as the
// counter example's, which the browser test drives.
func TestScaffoldPageIsTheDemo(t *testing.T) {
	demo, err := os.ReadFile(filepath.Join(frameRoot, "examples", "counter", "static", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := scaffold.ReadFile("scaffold/static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(demo, page) {
		t.Fatal("cmd/stateroom/scaffold/static/index.html differs from examples/counter/static/index.html; copy one over the other")
	}
}

// TestNewFindsFramework checks the order in which new looks for the
// framework: flag, environment, the binary's own source.
func TestNewFindsFramework(t *testing.T) {
	tmp := t.TempDir()
	other := filepath.Join(tmp, "othermod")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n\ngo 1.24\n"), 0o644)

	// The binary was built from this tree: found without being told.
	o, _, err := run(t, tmp, nil, "new", "a")
	if err != nil || !strings.Contains(o, "Stateroom from "+frameRoot) {
		t.Fatalf("new without --framework: %v\n%s", err, o)
	}
	// The environment variable comes before the binary's source.
	_, e, err := run(t, tmp, offlineEnv("STATEROOM_SOURCE="+other), "new", "b")
	if err == nil || !strings.Contains(e, "STATEROOM_SOURCE "+other+" holds module example.com/other") {
		t.Fatalf("STATEROOM_SOURCE to another module: %v\n%s", err, e)
	}
	o, _, err = run(t, tmp, offlineEnv("STATEROOM_SOURCE="+frameRoot), "new", "c")
	if err != nil || !strings.Contains(o, "Stateroom from "+frameRoot) {
		t.Fatalf("STATEROOM_SOURCE: %v\n%s", err, o)
	}
	// The flag comes first.
	_, e, err = run(t, tmp, offlineEnv("STATEROOM_SOURCE="+frameRoot), "new", "d", "--framework", tmp)
	if err == nil || !strings.Contains(e, "--framework "+tmp+": no go.mod there") {
		t.Fatalf("--framework without go.mod: %v\n%s", err, e)
	}
	if _, err := os.Stat(filepath.Join(tmp, "d")); err == nil {
		t.Error("a failed new left its directory behind")
	}
}

func TestNewErrors(t *testing.T) {
	tmp := t.TempDir()
	os.MkdirAll(filepath.Join(tmp, "taken"), 0o755)
	os.WriteFile(filepath.Join(tmp, "taken", "x"), nil, 0o644)
	os.WriteFile(filepath.Join(tmp, "file"), nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"new", "taken"}, "taken already exists and is not empty"},
		{[]string{"new", "file"}, "file exists and is not a directory"},
		{[]string{"new", "my service"}, `"my service" cannot name a Go module`},
		{[]string{"new", "ok", "--module", "example.com/a b"}, `--module "example.com/a b" is not a module path`},
		{[]string{"new"}, "needs the name of the directory to create"},
	} {
		_, e, err := run(t, tmp, nil, tc.args...)
		if err == nil || !strings.Contains(e, tc.want) {
			t.Errorf("stateroom %q: err=%v, stderr:\n%s\nwant %q", tc.args, err, e, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	o, _ := mustRun(t, t.TempDir(), "version")
	if !strings.HasPrefix(o, "stateroom ") || !strings.Contains(o, "go1.") {
		t.Fatalf("version: %q", o)
	}
}
