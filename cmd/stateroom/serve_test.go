package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// TestServe serves a built service directory and drives it with WebSocket
// clients; SIGINT closes them with 1001 and the command exits 0.
func TestServe(t *testing.T) {
	dir := builtScaffold(t)
	p := start(t, dir, "serve", ".", "-p", "0", "--cache-dir", cacheDir)
	httpURL, wsURL := p.ready(t)

	if code, body := get(t, httpURL+"/status"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/status: %d %q", code, body)
	}
	page, err := os.ReadFile(filepath.Join(dir, "static", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, httpURL+"/"); code != 200 || body != string(page) {
		t.Fatalf("GET /: %d, %d bytes; want the static page (%d bytes)", code, len(body), len(page))
	}

	a := dial(t, wsURL, "r1")
	a.expect("new value: 0")
	b := dial(t, wsURL, "r1")
	b.expect("new value: 0")
	a.send("increment")
	a.expect("new value: 1")
	b.expect("new value: 1")
	b.send("decrement")
	b.send("decrement")
	for _, c := range []*roomClient{a, b} {
		c.expect("new value: 0")
		c.expect("new value: -1")
	}
	// Another room has its own counter.
	other := dial(t, wsURL, "r2")
	other.expect("new value: 0")

	var checks []func(stateroom.CloseCode)
	for _, c := range []*roomClient{a, b, other} {
		checks = append(checks, c.closed())
	}
	if err := p.interrupt(t); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, p.out.String())
	}
	for _, check := range checks {
		check(stateroom.CloseGoingAway)
	}
}

// TestServeModuleFile serves the module file itself, with a static
// directory given by flag.
func TestServeModuleFile(t *testing.T) {
	dir := builtScaffold(t)
	p := start(t, t.TempDir(), "serve", filepath.Join(dir, "dist", "server.wasm"), "-p", "0", "--cache-dir", cacheDir,
		"--static", filepath.Join(dir, "static"), "--log-format", "json")
	httpURL, wsURL := p.ready(t)
	if code, body := get(t, httpURL+"/index.html"); code != 200 || !strings.Contains(body, "<title>Stateroom counter</title>") {
		t.Fatalf("GET /index.html: %d %q", code, body)
	}
	c := dial(t, wsURL, "x")
	c.expect("new value: 0")
	// --log-format json turns the ready line into a record too.
	if !strings.Contains(p.out.String(), `{"time":`) {
		t.Errorf("no JSON log records in:\n%s", p.out.String())
	}
	// SIGTERM stops as gracefully as SIGINT.
	closed := c.closed()
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	closed(stateroom.CloseGoingAway)
}

// TestServeErrors checks the advice for inputs users get wrong.
func TestServeErrors(t *testing.T) {
	tmp := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	// A valid WebAssembly module with no exports at all.
	bare := write("bare.wasm", []byte("\x00asm\x01\x00\x00\x00"))
	junk := write("junk.wasm", []byte("hello, world"))
	txt := write("notes.txt", []byte("hi"))

	// A port in use, held by this test.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing", []string{"serve", filepath.Join(tmp, "nope")}, []string{"does not exist"}},
		{"dir without module", []string{"serve", empty}, []string{"holds no server.wasm", "stateroom build"}},
		{"not wasm extension", []string{"serve", txt}, []string{"is not a .wasm or .wat file"}},
		{"not wasm content", []string{"serve", junk, "--no-cache"}, []string{"cannot load", junk}},
		{"not a service", []string{"serve", bare, "--no-cache"}, []string{"is not a Stateroom service module", "stateroom build"}},
		{"port in use", []string{"serve", filepath.Join(builtScaffold(t), "dist"), "-p", busy, "--cache-dir", cacheDir},
			[]string{"port " + busy + " on 127.0.0.1 is in use", "-p"}},
		{"bad flag", []string{"serve", bare, "--heartbeat-timeout", "1"}, []string{"must be longer than --heartbeat-interval"}},
		{"cluster without a node name", []string{"serve", bare, "--cluster-listen", "127.0.0.1:7001"}, []string{"need --node NAME"}},
		{"cluster without NATS", []string{"serve", bare, "--node", "n1"}, []string{"needs --cluster-listen", "--nats"}},
		{"cluster lease too short", []string{"serve", bare, "--node", "n1", "--cluster-listen", "127.0.0.1:7001", "--lease-ttl", "1s"}, []string{"--lease-ttl 1s is too short"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := run(t, tmp, nil, tc.args...)
			if err == nil {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 1 {
				t.Errorf("exit: %v, want status 1", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestShutdownIsPrompt stops serve and dev while a WebSocket client is
// connected and another connection is open but idle, as a browser's
// preconnect is. The client must get 1001 at once: net/http's Shutdown
// counts a connection that has sent no request as busy for 5 s, and no
// such wait may come before the rooms are closed. The process must then
// exit soon after its last client is gone. The bound is generous for a
// loaded machine, yet a second shorter than that 5 s wait, which starts
// when the server accepted the idle connection, just before SIGINT.
func TestShutdownIsPrompt(t *testing.T) {
	const bound = 4 * time.Second
	for _, command := range []string{"serve", "dev"} {
		t.Run(command, func(t *testing.T) {
			var p *proc
			if command == "serve" {
				p = start(t, builtScaffold(t), "serve", ".", "-p", "0", "--cache-dir", cacheDir)
			} else {
				p = start(t, copyOfScaffold(t), "dev", "-p", "0")
			}
			_, wsURL := p.ready(t)

			// The idle connection first: the server accepts connections in
			// order, so once the client below is answered, the server
			// holds the idle one too.
			idle, err := net.Dial("tcp", strings.TrimPrefix(wsURL, "ws://"))
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			c := dial(t, wsURL, "r")
			c.expect("new value: 0")

			type end struct {
				at  time.Time
				err error
			}
			clientEnd, idleEnd := make(chan end, 1), make(chan end, 1)
			go func() {
				for range c.conn.Messages() {
				}
				clientEnd <- end{time.Now(), c.conn.Err()}
			}()
			go func() {
				idle.SetReadDeadline(time.Now().Add(time.Minute))
				_, err := idle.Read(make([]byte, 1))
				idleEnd <- end{time.Now(), err}
			}()

			sent := time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			// The deadline only keeps a broken server from hanging the
			// test; the bounds are checked below.
			var closed end
			select {
			case closed = <-clientEnd:
			case <-time.After(time.Minute):
				t.Fatal("the client was not closed within a minute of SIGINT")
			}
			if code := closeCode(closed.err); code != stateroom.CloseGoingAway {
				t.Fatalf("client closed with %d (%v), want 1001", code, closed.err)
			}
			if d := closed.at.Sub(sent); d > bound {
				t.Errorf("the client got 1001 %v after SIGINT, want at most %v", d.Round(time.Millisecond), bound)
			}
			select {
			case <-p.done:
			case <-time.After(time.Minute):
				t.Fatalf("stateroom %s did not exit within a minute of SIGINT", command)
			}
			exited := time.Now()
			if p.err != nil {
				t.Errorf("exit after SIGINT: %v", p.err)
			}
			if d := exited.Sub(closed.at); d > bound {
				t.Errorf("stateroom %s exited %v after its last client was closed, want at most %v", command, d.Round(time.Millisecond), bound)
			}
			i := <-idleEnd // the exit closed it, if the server did not
			t.Logf("after SIGINT: client closed in %v, idle connection closed in %v, exit in %v",
				closed.at.Sub(sent).Round(time.Millisecond), i.at.Sub(sent).Round(time.Millisecond), exited.Sub(sent).Round(time.Millisecond))
		})
	}
}

// TestServeNoPage: a served directory without a page says so on the ready
// line, rather than leaving "/" to answer 404 unexplained.
func TestServeNoPage(t *testing.T) {
	built := builtScaffold(t)
	bare := t.TempDir()
	copyTree(t, filepath.Join(built, "dist", "server.wasm"), filepath.Join(bare, "server.wasm"))
	noIndex := t.TempDir()
	copyTree(t, filepath.Join(built, "dist", "server.wasm"), filepath.Join(noIndex, "server.wasm"))
	if err := os.MkdirAll(filepath.Join(noIndex, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(noIndex, "static", "app.js"), []byte("//"), 0o644)

	for _, tc := range []struct {
		name, target, want string
	}{
		{"directory", bare, "no page at / (no static/ beside " + filepath.Join(bare, "server.wasm") + "; pass --static DIR to serve a page)"},
		{"module file", filepath.Join(bare, "server.wasm"), "no page at / (pass --static DIR to serve a page)"},
		{"static without index.html", noIndex, "no page at / (" + filepath.Join(noIndex, "static") + " has no index.html)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, t.TempDir(), "serve", tc.target, "-p", "0", "--cache-dir", cacheDir, "--no-state")
			httpURL, _ := p.ready(t)
			if line := readyLine.FindString(p.out.String()); !strings.Contains(p.out.String(), tc.want) {
				t.Errorf("ready line %q does not say %q", line, tc.want)
			}
			if code, _ := get(t, httpURL+"/"); code != 404 {
				t.Errorf("GET /: %d, want 404", code)
			}
		})
	}
}
