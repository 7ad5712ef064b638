// Package faults_test is Stateroom's fault matrix: each test runs a real
// server on loopback, drives real clients at it, injects one kind of fault
// (a stalled reader, broken frames, unfinished handshakes, a connection
// storm, faulting WebAssembly guests, a shutdown under load), and checks
// that healthy clients got everything, the faulty one was closed with the
// documented code, and that afterwards no goroutine is left over and the
// process holds no more file descriptors than before.
//
// The package uses only the public API of the root package, server,
// wasmhost and client (the Go client, for the shutdown's clients), and the
// shared clients in test/faults/wsclient.
package faults_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The runtime opens the network poller's descriptors on first use and
	// keeps them; open them now so they are part of every test's baseline.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for a condition; conditions are polled.
const waitTimeout = 20 * time.Second

// quietLogger discards the server's logs: the faults make it log a lot,
// and the tests check behaviour, not log lines.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is one test's server.
type env struct {
	srv *server.Server
	ts  *httptest.Server
}

// start runs a server for f on a loopback httptest listener. When the test
// ends (after the cleanups registered later, such as closing clients), it
// shuts the server down and checks that no goroutine is left and that the
// file descriptors are back to what they were before start.
func start(t *testing.T, f stateroom.Factory, opts server.Options) *env {
	t.Helper()
	checkLeaks(t)
	return serve(t, f, opts)
}

// serve is start without the leak check, for a test that registers it
// itself before opening something the server depends on.
func serve(t *testing.T, f stateroom.Factory, opts server.Options) *env {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	srv, err := server.New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, ts: httptest.NewServer(srv)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		e.ts.Close()
	})
	return e
}

// checkLeaks records the open file descriptors now and, when the test
// ends, checks that no goroutine is left over and that the descriptors are
// back to that count. Register it before anything the test opens, so its
// cleanup runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	base := openFDs(t)
	t.Cleanup(func() {
		goleak.VerifyNone(t)
		var now []string
		deadline := time.Now().Add(waitTimeout)
		for {
			now = openFDs(t)
			if len(now) <= len(base) || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if len(now) > len(base) {
			t.Errorf("%d file descriptors open after the test, %d before:\nbefore: %s\nafter:  %s", len(now), len(base), strings.Join(base, " "), strings.Join(now, " "))
		}
	})
}

// openFDs lists the process's open file descriptors with their targets.
func openFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting file descriptors: %v (the fault tests need Linux's /proc)", err)
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, e.Name()+"="+target)
	}
	return out
}

// url returns the WebSocket URL of room id.
func (e *env) url(id string) string {
	return "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws/" + id
}

// clients returns how many clients room id has now (0 if it is not
// running).
func (e *env) clients(id string) int {
	return clientsIn(e.srv, id)
}

func clientsIn(srv *server.Server, id string) int {
	for _, r := range srv.Rooms() {
		if r.ID == id {
			return r.Clients
		}
	}
	return 0
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testContext is a context bounded by waitTimeout, canceled when the test
// ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
