package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// The tests run the stateroom command as a user would: TestMain builds the
// binary once; each test runs it in a temporary directory.
var (
	stateroomBin string // the stateroom binary under test
	workDir      string // temporary root of the test binary's files
	cacheDir     string // shared wazero compilation cache
	frameRoot    string // the framework source (this repository)
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(workDir)
		os.Exit(code)
	}))
}

func setup() error {
	var err error
	if workDir, err = os.MkdirTemp("", "stateroom-cli-test-"); err != nil {
		return err
	}
	cacheDir = filepath.Join(workDir, "wazero-cache")
	if frameRoot, err = filepath.Abs("../.."); err != nil {
		return err
	}
	stateroomBin = filepath.Join(workDir, "stateroom")
	cmd := exec.Command("go", "build", "-o", stateroomBin, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build of the stateroom command: %w", err)
	}
	return nil
}

// offlineEnv is the environment of every command under test: no module
// proxy, so anything that would need the network fails the test, and the
// test's GOFLAGS are not inherited.
func offlineEnv(extra ...string) []string {
	env := make([]string, 0, len(os.Environ())+4)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOPROXY=") && !strings.HasPrefix(kv, "STATEROOM_SOURCE=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "GOPROXY=off", "GOFLAGS="), extra...)
}

// run runs the binary to completion in dir and returns its output.
func run(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stateroomBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = offlineEnv()
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t *testing.T, dir string, args ...string) (stdout, stderr string) {
	t.Helper()
	o, e, err := run(t, dir, nil, args...)
	if err != nil {
		t.Fatalf("stateroom %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o, e)
	}
	return o, e
}

// syncBuffer is a bytes.Buffer safe to write from the exec package's
// copier while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a long-running stateroom (serve or dev).
type proc struct {
	cmd  *exec.Cmd
	out  syncBuffer // stdout and stderr together
	done chan struct{}
	err  error // of Wait, valid after done
}

// start runs the binary in the background; the test's cleanup stops it.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return startEnv(t, dir, nil, args...)
}

// startEnv is start with extra environment variables ("K=V"). A serve or
// dev gets a state directory of its own in the test's temporary
// directory, unless args choose (--state-dir, --no-state): tests share the
// built scaffold's directory, and the rooms one test saved in its
// .stateroom would be restored in the next. Tests of the default location
// use startDefault.
func startEnv(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	if len(args) > 0 && (args[0] == "serve" || args[0] == "dev") &&
		!slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--state-dir") || a == "--no-state" }) {
		args = append(args, "--state-dir", t.TempDir())
	}
	return startDefault(t, dir, env, args...)
}

// startDefault is startEnv with args as they are: a serve or dev keeps its
// state in dir/.stateroom unless args say otherwise.
func startDefault(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(stateroomBin, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = offlineEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of stateroom %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// waitFor polls the output until re matches (after offset from: the
// number of matches to skip) and returns the submatches.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp, skip int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if all := re.FindAllStringSubmatch(p.out.String(), -1); len(all) > skip {
			return all[skip]
		}
		select {
		case <-p.done:
			t.Fatalf("stateroom exited (%v) before printing %q; output:\n%s", p.err, re, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v; output:\n%s", re, timeout, p.out.String())
		}
	}
}

var readyLine = regexp.MustCompile(`serving .* on (https?://\S+) \((wss?://\S+)/ws/\{room\}\)`)

// ready waits for the line with the URL and returns the base HTTP and
// WebSocket URLs.
func (p *proc) ready(t *testing.T) (httpURL, wsURL string) {
	t.Helper()
	m := p.waitFor(t, readyLine, 0, 2*time.Minute)
	return m[1], m[2]
}

// interrupt sends SIGINT and waits for the exit; it returns the exit error.
func (p *proc) interrupt(t *testing.T) error {
	t.Helper()
	return p.stop(t, syscall.SIGINT)
}

// stop sends sig and waits for the exit; it returns the exit error.
func (p *proc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		t.Fatalf("stateroom did not exit within 30s of %v; output:\n%s", sig, p.out.String())
		return nil
	}
}

// roomClient is one connection to a room, through package client without
// reconnection, so that a test sees every close the server sends.
type roomClient struct {
	t    *testing.T
	conn *client.Conn
}

func dial(t *testing.T, wsURL, room string) *roomClient {
	t.Helper()
	c, err := tryDial(t, wsURL+"/ws/"+room, client.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", room, err)
	}
	return c
}

// tryDial dials url with opts and returns the client, or the error: a
// [*client.HandshakeError] when the server refused (see refusal).
func tryDial(t *testing.T, url string, opts client.Options) (*roomClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return &roomClient{t: t, conn: conn}, nil
}

// refusal returns the HTTP status the server refused a handshake with,
// or 0 when err is not a refusal (nil included).
func refusal(err error) int {
	if he, ok := errors.AsType[*client.HandshakeError](err); ok {
		return he.Status
	}
	return 0
}

// closeCode returns the close code err carries, or 0 when it is not a
// [*client.CloseError] (nil included).
func closeCode(err error) stateroom.CloseCode {
	if ce, ok := errors.AsType[*client.CloseError](err); ok {
		return ce.Code
	}
	return 0
}

// next returns the next message, or why the connection ended.
func (c *roomClient) next() (stateroom.Payload, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := c.conn.Receive(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		c.t.Fatal("no message and no close within 20s")
	}
	return p, err
}

// read returns the next text message.
func (c *roomClient) read() string {
	c.t.Helper()
	p, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if p.Binary {
		c.t.Fatalf("read a binary message %q, want text", p.Data)
	}
	return string(p.Data)
}

// expect checks the next text message, passing over the scaffold
// counter's "clients: N" unless want is one: these tests follow the value,
// and the scaffold's own tests check the count.
func (c *roomClient) expect(want string) {
	c.t.Helper()
	got := c.read()
	for strings.HasPrefix(got, "clients: ") && !strings.HasPrefix(want, "clients: ") {
		got = c.read()
	}
	if got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func (c *roomClient) send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Send(ctx, stateroom.Text(msg)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// closed reads in the background until the connection closes, so that
// the client answers the close handshake at once as a browser does (a
// Conn whose messages are not read stops reading its socket), and returns
// a function that checks the close code.
func (c *roomClient) closed() (check func(want stateroom.CloseCode)) {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for range c.conn.Messages() {
		}
	}()
	return func(want stateroom.CloseCode) {
		c.t.Helper()
		timer := time.NewTimer(60 * time.Second)
		defer timer.Stop()
		select {
		case <-ended:
		case <-timer.C:
			c.t.Fatalf("not closed within 60s, want %d (%v)", want, want)
		}
		if err := c.conn.Err(); closeCode(err) != want {
			c.t.Fatalf("closed with %v, want %d (%v)", err, want, want)
		}
	}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// copyTree copies a directory tree (a built scaffold), so tests that
// change files do not disturb the others.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, r)
		if d.IsDir() && d.Name() == defaultStateDir {
			return filepath.SkipDir // a copy starts with no saved rooms
		}
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(path, target)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The built scaffold is shared: `stateroom new` then `stateroom build`,
// both offline, once per test binary. Tests that edit it work on a copy.
var (
	builtOnce sync.Once
	builtDir  string
	builtErr  error
	builtLog  string
)

// builtScaffold returns a directory holding a new service after
// `stateroom build`.
func builtScaffold(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		parent := filepath.Join(workDir, "scaffold")
		if builtErr = os.MkdirAll(parent, 0o755); builtErr != nil {
			return
		}
		var o1, e1, o2, e2 string
		o1, e1, builtErr = run(t, parent, nil, "new", "counter", "--framework", frameRoot)
		builtLog = o1 + e1
		if builtErr != nil {
			return
		}
		builtDir = filepath.Join(parent, "counter")
		o2, e2, builtErr = run(t, builtDir, nil, "build")
		builtLog += o2 + e2
	})
	if builtErr != nil {
		t.Fatalf("new + build: %v\n%s", builtErr, builtLog)
	}
	return builtDir
}

// copyOfScaffold returns a private copy of the built scaffold.
func copyOfScaffold(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "counter")
	copyTree(t, builtScaffold(t), dst)
	return dst
}

// editFile rewrites a file with old replaced by new, failing if old is
// missing.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	// Written aside and renamed over, as many editors save: dev's watcher
	// must never see the file half-written (a truncate-then-write save
	// under load showed dev the empty file, a second "broken" report).
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
