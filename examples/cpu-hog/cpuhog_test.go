//go:build !wasip1

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom"
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

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// read returns the next text message, failing the test on anything else.
func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		t.Fatalf("read: %v %q, %v", typ, b, err)
	}
	return string(b)
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
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "pong" {
		t.Errorf("got %q, want pong", got)
	}
}
