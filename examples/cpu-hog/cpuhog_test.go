//go:build !wasip1

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs the real server for f on a loopback listener and returns its
// ws:// address; it shuts down when the test ends.
func serve(t *testing.T, f stateroom.Factory) string {
	t.Helper()
	return servertest.Start(t, f, server.Options{})
}

// dial connects to url without reconnection, so that a test sees every
// close.
func dial(t *testing.T, url string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next message, or why the connection ended, or
// context.DeadlineExceeded if wait passed first.
func next(c *client.Conn, wait time.Duration) (stateroom.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Receive(ctx)
}

// read returns the next text message, failing the test on anything else.
func read(t *testing.T, c *client.Conn) string {
	t.Helper()
	p, err := next(c, 10*time.Second)
	if err != nil || p.Binary {
		t.Fatalf("read: %q (binary: %v), %v; want a text message", p.Data, p.Binary, err)
	}
	return string(p.Data)
}

// TestCPUHog runs the native service with a short spin: the client waits
// out the spin, then the room answers as usual.
func TestCPUHog(t *testing.T) {
	url := serve(t, stateroom.New(func(string) *CPUHog { return &CPUHog{Spin: 20 * time.Millisecond} }))
	c := dial(t, url+"/ws/hog")
	if got := read(t, c); !strings.HasPrefix(got, "spun ") || got == "spun 0 rounds" {
		t.Errorf("after the spin got %q, want \"spun N rounds\" with N > 0", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, stateroom.Text("ping")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "pong" {
		t.Errorf("got %q, want pong", got)
	}
}
