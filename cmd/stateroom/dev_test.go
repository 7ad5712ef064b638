package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

var (
	swappedLine   = regexp.MustCompile(`swapped in the new build`)
	commentLine   = regexp.MustCompile(`only comments changed in \S*counter\.go: nothing to build`)
	nativeLine    = regexp.MustCompile(`the native build of \S+ \(go build \.\) fails`)
	identicalLine = regexp.MustCompile(`has the same code as the running one; nothing to swap`)
	keptLine      = regexp.MustCompile(`still serving the previous build`)
	notBuiltLine  = regexp.MustCompile(`no build to serve yet`)
)

// TestDev edits the service under `stateroom dev`: an edit of comments
// only builds nothing and closes nobody; a good edit
// swaps the module (an old connection gets 1012, a new one sees the new
// behaviour on the room's saved state); a broken edit prints the
// compiler's error and keeps the old module.
func TestDev(t *testing.T) {
	dir := copyOfScaffold(t)
	// The default state directory, .stateroom in the working directory:
	// inside the watched tree, whose saves must not look like edits.
	p := startDefault(t, dir, nil, "dev", "-p", "0", "--debounce", "50ms")
	httpURL, wsURL := p.ready(t)
	p.waitFor(t, regexp.MustCompile(`rooms saved to \.stateroom/rooms\.db`), 0, time.Second)
	if code, body := get(t, httpURL+"/status"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/status: %d %q", code, body)
	}

	if strings.Contains(p.out.String(), "no page at /") {
		t.Errorf("the ready line says there is no page:\n%s", p.out.String())
	}

	// Static files are served live from the source directory, and copied
	// to dist/static for `stateroom serve DIR` (which finds dist/).
	page := filepath.Join(dir, "static", "index.html")
	if err := os.WriteFile(page, []byte("<p>edited</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, httpURL+"/"); code != 200 || body != "<p>edited</p>" {
		t.Fatalf("GET / after an edit: %d %q", code, body)
	}
	p.waitFor(t, regexp.MustCompile(`index.html changed \(static files are served live`), 0, time.Minute)
	if b, err := os.ReadFile(filepath.Join(dir, "dist", "static", "index.html")); err != nil || string(b) != "<p>edited</p>" {
		t.Errorf("dist/static/index.html after the edit: %q, %v; want the edited page", b, err)
	}
	if module, static, _, err := resolveServeTarget(dir); err != nil || module != filepath.Join(dir, "dist", "server.wasm") || static != filepath.Join(dir, "dist", "static") {
		t.Errorf("serve %s would serve module %q with static files %q (%v); want dist/server.wasm and dist/static", dir, module, static, err)
	}

	// The page works when opened as localhost or as 127.0.0.1; another
	// site's page is refused.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(wsURL, "ws://"))
	for _, origin := range []string{"http://localhost:" + port, "http://127.0.0.1:" + port} {
		c, err := tryDial(t, wsURL+"/ws/origin", client.Options{Header: http.Header{"Origin": {origin}}})
		if err != nil {
			t.Fatalf("dial from %s: %v", origin, err)
		}
		c.expect("new value: 0")
		c.conn.Close()
	}
	if _, err := tryDial(t, wsURL+"/ws/origin", client.Options{Header: http.Header{"Origin": {"http://evil.example"}}}); refusal(err) != http.StatusForbidden {
		t.Fatalf("dial from http://evil.example: %v; want a 403 refusal", err)
	}

	a := dial(t, wsURL, "r")
	a.expect("new value: 0")
	a.send("increment")
	a.expect("new value: 1")

	// A save that changes only comments, here adding lines (which moves
	// the code below them, and so the module's line tables), builds
	// nothing and leaves the room running.
	editFile(t, filepath.Join(dir, "counter.go"), "// NewCounter returns the service of a new room.", "// NewCounter returns the service of one new room:\n//\n// every room has its own counter.")
	p.waitFor(t, commentLine, 0, 2*time.Minute)
	a.send("increment")
	a.expect("new value: 2") // still connected, to the same instance
	aClosed := a.closed()

	editFile(t, filepath.Join(dir, "counter.go"), "c.value++", "c.value += 10")
	p.waitFor(t, swappedLine, 0, 2*time.Minute)
	aClosed(stateroom.CloseServiceRestart)
	// One line for the swap, with the rooms and clients it closed (the
	// room of the origin checks may still be in its grace period), and
	// none per room from the server.
	p.waitFor(t, regexp.MustCompile(`swapped in the new build: closed (1 room|2 rooms) \(1 client\) with code 1012`), 0, time.Minute)
	if strings.Contains(p.out.String(), "room ended") {
		t.Errorf("the server logged each room the swap closed:\n%s", p.out.String())
	}

	b := dial(t, wsURL, "r")
	b.expect("new value: 2") // the room's state, restored by the new build
	b.send("increment")
	b.expect("new value: 12")

	// The scaffold's native build compiles: nothing said otherwise
	// before the edit below breaks it.
	if m := nativeLine.FindString(p.out.String()); m != "" {
		t.Errorf("the native build of the scaffold was reported broken: %q", m)
	}
	editFile(t, filepath.Join(dir, "counter.go"), "c.value += 10", `c.value += "ten"`)
	p.waitFor(t, keptLine, 0, 2*time.Minute)
	if out := p.out.String(); !strings.Contains(out, "counter.go:") || !strings.Contains(out, `mismatched types int and untyped string`) {
		t.Errorf("the compiler's error is not in the output:\n%s", out)
	}
	// The previous build still serves, and its rooms were left running.
	b.send("increment")
	b.expect("new value: 22")
	c := dial(t, wsURL, "other")
	c.expect("new value: 0")
	c.send("increment")
	c.expect("new value: 10")

	bClosed, cClosed := b.closed(), c.closed()
	if err := p.interrupt(t); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	bClosed(stateroom.CloseGoingAway)
	cClosed(stateroom.CloseGoingAway)
	if n := len(swappedLine.FindAllString(p.out.String(), -1)); n != 1 {
		t.Errorf("%d swaps, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, ".stateroom", "rooms.db")); err != nil {
		t.Errorf("no state file in the working directory: %v", err)
	}
	// One style of line: log records, and the compiler's own output.
	for _, line := range strings.Split(p.out.String(), "\n") {
		if strings.HasPrefix(line, "stateroom: ") {
			t.Errorf("a line in another style: %q", line)
		}
	}
}

// TestDevChecksNativeBuild: renaming a function only the native entry
// point (main.go) uses builds the same module (nothing to swap) and
// leaves `go build .` broken; dev says so, and keeps the rooms running.
func TestDevChecksNativeBuild(t *testing.T) {
	dir := copyOfScaffold(t)
	counter, main := filepath.Join(dir, "counter.go"), filepath.Join(dir, "main.go")
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(counter, append(b, "\n// addrLine is what main.go logs.\nfunc addrLine() string { return \"serving on http://%s\" }\n"...), 0o644)
	editFile(t, main, `log.Printf("serving on http://%s", addr)`, `log.Printf(addrLine(), addr)`)

	p := start(t, dir, "dev", "-p", "0", "--debounce", "50ms")
	_, wsURL := p.ready(t)
	p.waitFor(t, regexp.MustCompile(`watching`), 0, time.Minute)
	a := dial(t, wsURL, "r")
	a.expect("new value: 0")

	// A change of code, so dev builds; the module leaves out the function
	// main.go alone calls, so it is the same module.
	editFile(t, counter, "func addrLine()", "func listenLine()")
	p.waitFor(t, identicalLine, 0, 2*time.Minute)
	p.waitFor(t, nativeLine, 0, 2*time.Minute)
	if out := p.out.String(); !strings.Contains(out, "main.go:") || !strings.Contains(out, "undefined: addrLine") {
		t.Errorf("the compiler's error is not in the output:\n%s", out)
	}
	// The module did not change: the room kept running.
	a.send("increment")
	a.expect("new value: 1")
	if swappedLine.MatchString(p.out.String()) {
		t.Error("a change the module does not see swapped it")
	}

	editFile(t, main, "addrLine()", "listenLine()")
	p.waitFor(t, regexp.MustCompile(`the native build of \S+ compiles again`), 0, 2*time.Minute)
	a.send("increment")
	a.expect("new value: 2")
	if n := len(nativeLine.FindAllString(p.out.String(), -1)); n != 1 {
		t.Errorf("the native build was reported broken %d times, want once:\n%s", n, p.out.String())
	}
}

// TestDevStartsBroken starts on code that does not compile: connections
// are refused with a message until an edit fixes it.
func TestDevStartsBroken(t *testing.T) {
	dir := copyOfScaffold(t)
	counter := filepath.Join(dir, "counter.go")
	editFile(t, counter, "c.value++", "c.value++ +")
	p := start(t, dir, "dev", "-p", "0", "--debounce", "50ms")
	_, wsURL := p.ready(t)
	p.waitFor(t, notBuiltLine, 0, time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, wsURL+"/ws/r", client.Options{})
	if err == nil {
		conn.Close()
		t.Fatal("connected to a service that never built")
	}
	if refusal(err) != http.StatusInternalServerError {
		t.Fatalf("dial: %v; want an HTTP 500 refusal", err)
	}

	editFile(t, counter, "c.value++ +", "c.value++")
	p.waitFor(t, regexp.MustCompile(`compiled in`), 0, 2*time.Minute)
	// The swap follows the compile; poll until a connection succeeds.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := client.Dial(ctx, wsURL+"/ws/r", client.Options{})
		cancel()
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the fix: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := dial(t, wsURL, "r")
	c.expect("new value: 0")
}

// TestDevPortInUse fails at once, before building, with advice.
func TestDevPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_, stderr, err := run(t, builtScaffold(t), nil, "dev", "-p", port)
	if err == nil || !strings.Contains(stderr, "is in use") || !strings.Contains(stderr, "choose another port with -p") {
		t.Fatalf("err = %v, stderr:\n%s", err, stderr)
	}
	if strings.Contains(stderr, "building") {
		t.Errorf("built before finding the port busy:\n%s", stderr)
	}
}

// TestDevNotAService stops at once when the directory cannot be a service.
func TestDevNotAService(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lib.go"), []byte("package lib\n"), 0o644)
	_, stderr, err := run(t, dir, nil, "dev", "-p", "0")
	if err == nil || !strings.Contains(stderr, "holds package lib") || !strings.Contains(stderr, "guest.Register") {
		t.Fatalf("err = %v, stderr:\n%s", err, stderr)
	}
	if n := strings.Count(stderr, "holds package lib"); n != 1 {
		t.Errorf("the error is printed %d times:\n%s", n, stderr)
	}
}

// TestDevClient rebuilds the [client] package on its own change, without
// swapping the service.
func TestDevClient(t *testing.T) {
	dir := copyOfScaffold(t)
	web := filepath.Join(dir, "web", "main.go")
	os.MkdirAll(filepath.Dir(web), 0o755)
	if err := os.WriteFile(web, []byte("package main\n\nfunc main() { println(\"one\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	toml := filepath.Join(dir, "stateroom.toml")
	b, _ := os.ReadFile(toml)
	os.WriteFile(toml, append(b, "\n[client]\npackage = \"./web\"\n"...), 0o644)

	p := start(t, dir, "dev", "-p", "0", "--debounce", "50ms")
	httpURL, _ := p.ready(t)
	clientBuilt := regexp.MustCompile(`built ./dist/client/client.wasm`)
	p.waitFor(t, clientBuilt, 0, time.Minute)
	_, first := get(t, httpURL+"/client/client.wasm")
	if !strings.HasPrefix(first, "\x00asm") {
		t.Fatalf("/client/client.wasm is not a module (%d bytes)", len(first))
	}

	editFile(t, web, `"one"`, `"two, a longer string"`)
	p.waitFor(t, clientBuilt, 1, 2*time.Minute)
	_, second := get(t, httpURL+"/client/client.wasm")
	if second == first || !strings.Contains(second, "two, a longer string") {
		t.Error("/client/client.wasm did not change after the rebuild")
	}
	if strings.Contains(p.out.String(), "swapped") {
		t.Error("a client-only change swapped the service")
	}
}

// TestIsGoSource checks which changed files make dev rebuild.
func TestIsGoSource(t *testing.T) {
	for path, want := range map[string]bool{
		"/p/counter.go":      true,
		"/p/go.mod":          true,
		"/p/go.sum":          true,
		"/p/counter_test.go": false, // tests are not in the build
		"/p/static/app.js":   false,
		"/p/README.md":       false,
	} {
		if got := isGoSource(path); got != want {
			t.Errorf("isGoSource(%s) = %v, want %v", path, got, want)
		}
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 rooms", 1: "1 room", 2: "2 rooms"} {
		if got := plural(n, "room"); got != want {
			t.Errorf("plural(%d, room) = %q, want %q", n, got, want)
		}
	}
}
