package js_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/client/js"
	"github.com/stateroom-go/stateroom/internal/browsertest"
	"github.com/stateroom-go/stateroom/server"
)

// waitTimeout bounds every wait; nothing is asserted about timing.
const waitTimeout = 30 * time.Second

// probe tells each client its id ("<prefix>id:N") on Connect and echoes
// every message to its sender.
type probe struct {
	stateroom.BaseService
	prefix string
}

func (p probe) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Text(p.prefix+"id:"+ev.Client.String()))
}

func (p probe) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	r.Send(stateroom.To(ev.Client), ev.Payload)
}

func probeFactory(prefix string) stateroom.Factory {
	return stateroom.New(func(string) probe { return probe{prefix: prefix} })
}

// page imports the module relative to itself and records what the
// connection does in window.log.
const page = `<!doctype html>
<meta charset="utf-8">
<title>stateroom.js test</title>
<script type="module">
import { connect, roomURL } from "./stateroom.js";
const log = window.log = { msgs: [], states: [], events: [], closes: [] };
window.roomURL = roomURL;
window.connect = connect;
const conn = window.conn = connect(new URLSearchParams(location.search).get("room"), {
  minDelay: 20,
  maxDelay: 300,
  onMessage: (data) => log.msgs.push(typeof data === "string" ? data : "bin:" + Array.from(new Uint8Array(data)).join(",")),
  onStateChange: (state, info) => log.states.push(state + (info.code ? ":" + info.code : "")),
});
conn.addEventListener("state", (ev) => log.events.push(ev.detail.state));
conn.addEventListener("close", (ev) => log.closes.push(ev.detail.code));
</script>
`

// env is a stateroom server mounted under /app/ with the page and the
// module, on a fixed address so it can restart.
type env struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *server.Server
	http *http.Server
	done chan struct{}
}

func newEnv(t *testing.T, f stateroom.Factory) *env {
	e := &env{t: t}
	e.start(f, "127.0.0.1:0")
	t.Cleanup(e.stop)
	return e
}

func (e *env) start(f stateroom.Factory, addr string) {
	s, err := server.New(f, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	inner := http.NewServeMux()
	inner.Handle("GET /stateroom.js", js.Handler())
	inner.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
	inner.Handle("/ws/", s)
	mux := http.NewServeMux()
	mux.Handle("/app/", http.StripPrefix("/app", inner))

	var ln net.Listener
	for range 100 { // the port of a stopped server may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	e.mu.Lock()
	e.addr, e.srv, e.http, e.done = ln.Addr().String(), s, hs, done
	e.mu.Unlock()
}

func (e *env) stop() {
	e.mu.Lock()
	s, hs, done := e.srv, e.http, e.done
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s.Shutdown(ctx)
	hs.Close()
	<-done
}

// restart stops the server (its clients get 1001) and starts a new one on
// the same address.
func (e *env) restart(f stateroom.Factory) {
	e.stop()
	e.start(f, e.addr)
}

func (e *env) server() *server.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
}

// TestBrowserClient drives stateroom.js in headless Chromium against a
// server mounted under /app/: text and binary messages, a reload and a
// service restart that keep the client id, sends queued while
// reconnecting, a server restart, and a stop on 4002.
func TestBrowserClient(t *testing.T) {
	e := newEnv(t, probeFactory(""))
	const room = "r 1/x"
	pageURL := "http://" + e.addr + "/app/?room=" + "r%201%2Fx"

	alloc, cancelAlloc := browsertest.Allocator(t)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	// The first Run starts the browser: no timeout on it (see chromedp.Run).
	if err := chromedp.Do(tab, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("open the page: %v", err)
	}

	dump := func() string {
		s, _ := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify({state: window.conn?.state, lastClose: window.conn?.lastClose, log: window.log})`))
		return s
	}
	waitJS := func(what, cond string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, waitTimeout)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(0), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
			t.Fatalf("%s: waiting for %s: %v (page: %s)", what, cond, err, dump())
		}
	}
	evalJS := func(expr string) {
		t.Helper()
		evaluate[chromedp.Void](t, tab, expr, dump)
	}
	hasMsg := func(m string) string {
		return fmt.Sprintf(`window.log && window.log.msgs.includes(%q)`, m)
	}

	// Connected under the prefix, with the room id percent-encoded.
	waitJS("first connection", hasMsg("id:1"))
	url := evaluate[string](t, tab, `conn.url`, dump)
	if want := "ws://" + e.addr + "/app/ws/r%201%2Fx"; url != want {
		t.Fatalf("conn.url = %q, want %q", url, want)
	}
	derived := evaluate[[]string](t, tab, `[roomURL("a b", {url: "https://example.com/p"}), roomURL("a", {url: "http://h:8/x/?q#f"}), roomURL("", {url: "wss://h/ws"})]`, dump)
	if fmt.Sprint(derived) != "[wss://example.com/p/ws/a%20b ws://h:8/x/ws/a wss://h/ws]" {
		t.Fatalf("roomURL: %q", derived)
	}

	// A Go client in the same room holds id 2, so a fresh token would get 3.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	other, err := client.Dial(ctx, "http://"+e.addr+"/app", client.Options{Room: room})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if p := <-other.Messages(); p.String() != "id:2" {
		t.Fatalf("Go client got %q", p.Data)
	}

	// Text and binary, both ways.
	evalJS(`conn.send("hi"); conn.send(new Uint8Array([1, 2, 255])); conn.send(new Uint8Array([7, 8]).buffer); true`)
	waitJS("text echo", hasMsg("hi"))
	waitJS("binary echo", hasMsg("bin:1,2,255"))
	waitJS("ArrayBuffer echo", hasMsg("bin:7,8"))

	// An explicit url overrides the page's.
	waitJS("explicit url", `(() => {
		if (!window.c2) window.c2 = connect("other", {url: location.origin + "/app"});
		return c2.state === "open" && c2.url === location.origin.replace("http", "ws") + "/app/ws/other";
	})()`)
	evalJS(`c2.close(); c2.state`)

	// A reload keeps the token (sessionStorage), so the client id.
	token1 := evaluate[string](t, tab, `conn.token`, dump)
	if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitJS("after reload", `window.log && window.log.msgs.length > 0`)
	waitJS("after reload", `log.msgs[0] === "id:1" && conn.state === "open"`)
	token2 := evaluate[string](t, tab, `conn.token`, dump)
	if token1 != token2 {
		t.Fatalf("token changed on reload: %q -> %q", token1, token2)
	}

	// The service is replaced (1012): the page reconnects by itself.
	other.Close()
	e.server().SwapFactory(probeFactory("v2 "))
	waitJS("after 1012", hasMsg("v2 id:1"))
	waitJS("after 1012", `log.states.includes("reconnecting:1012") && conn.state === "open" && log.events.includes("reconnecting")`)

	// While the service refuses rooms (HTTP 500, seen as 1006), the page
	// keeps reconnecting and queues; the queue goes out once it is back.
	var accept atomic.Bool
	e.server().SwapFactory(stateroom.FactoryFunc(func(string) (stateroom.Service, error) {
		if !accept.Load() {
			return nil, errors.New("not yet")
		}
		return probe{prefix: "v3 "}, nil
	}))
	waitJS("refused", `conn.state === "reconnecting"`)
	queued := evaluate[int](t, tab, `for (let i = 0; i < 5; i++) conn.send("q" + i); conn.send(new Uint8Array([9])); conn.queued`, dump)
	if queued != 6 {
		t.Fatalf("queued %d, want 6 (page: %s)", queued, dump())
	}
	accept.Store(true)
	waitJS("queue flushed", hasMsg("bin:9"))
	tail := evaluate[string](t, tab, `JSON.stringify(log.msgs.slice(-7))`, dump)
	if tail != `["v3 id:1","q0","q1","q2","q3","q4","bin:9"]` {
		t.Fatalf("after the queue: %s", tail)
	}

	// A server restart (1001, then refused connections) is survived too.
	e.restart(probeFactory("v4 "))
	waitJS("after restart", hasMsg("v4 id:1"))
	waitJS("after restart", `log.states.includes("reconnecting:1001") && conn.state === "open"`)

	// An operator closes the room (4002): the page stops for good.
	if !e.server().CloseRoom(room, 0, "closed by the operator") {
		t.Fatal("CloseRoom: no such room")
	}
	waitJS("after 4002", `conn.state === "closed" && conn.lastClose.code === 4002 && conn.lastClose.reason === "closed by the operator" && log.closes.join() === "4002"`)
	threw := evaluate[bool](t, tab, `(() => { try { conn.send("x"); return false } catch { return true } })()`, dump)
	if !threw {
		t.Fatal("send on a closed connection did not throw")
	}
	states := evaluate[string](t, tab, `log.states.join(" ")`, dump)
	if want := "connecting open reconnecting:1012 open reconnecting:1012 open reconnecting:1001 open closed:4002"; states != want {
		// Repeated attempts while refused add no state change; any other
		// difference is a bug.
		t.Fatalf("states:\n got  %s\n want %s", states, want)
	}
}

// evaluate runs a JavaScript expression in tab and returns its value.
func evaluate[T any](t *testing.T, tab context.Context, expr string, dump func() string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v (page: %s)", expr, err, dump())
	}
	return v
}
