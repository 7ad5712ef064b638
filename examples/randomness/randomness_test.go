//go:build !wasip1

package main

import (
	"context"
	"strconv"
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

// roomClient is one client of a test, through package client without
// reconnection.
type roomClient struct {
	t *testing.T
	c *client.Conn
}

func dial(t *testing.T, url string) *roomClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return &roomClient{t, c}
}

func (c *roomClient) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Send(ctx, stateroom.Text(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// number reads one "random number: N" message and returns N.
func (c *roomClient) number() uint64 {
	c.t.Helper()
	return c.read("random number: ")
}

// draw reads one "math/rand/v2: N" message and returns N.
func (c *roomClient) draw() uint64 {
	c.t.Helper()
	return c.read("math/rand/v2: ")
}

// read reads one text message prefix+N and returns N.
func (c *roomClient) read(prefix string) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.c.Receive(ctx)
	if err != nil {
		c.t.Fatalf("read: no message within 10s: %v", err)
	}
	s, ok := strings.CutPrefix(string(p.Data), prefix)
	n, err := strconv.ParseUint(s, 10, 64)
	if p.Binary || !ok || err != nil {
		c.t.Fatalf("got %q (binary: %v), want text \"%sN\"", p.Data, p.Binary, prefix)
	}
	return n
}

// testRandomness is the transcript every build of the service must pass:
// a number and a math/rand/v2 draw on connect, new ones on "roll", nothing
// for other messages, and numbers that differ between clients, rolls and
// rooms (a host with deterministic randomness, or a pre-initialised module
// whose runtime generator was not reseeded, would give two fresh rooms
// the same numbers).
func testRandomness(t *testing.T, f stateroom.Factory) {
	url := serve(t, f)
	seen := map[uint64]string{}
	record := func(what string, n uint64) {
		if prev, dup := seen[n]; dup {
			t.Errorf("%s got %d, the same number as %s", what, n, prev)
		}
		seen[n] = what
	}
	both := func(what string, c *roomClient) {
		record(what, c.number())
		record(what+" (math/rand/v2)", c.draw())
	}
	a := dial(t, url+"/ws/room-a")
	both("connect a", a)
	a.send("hello") // ignored: the next message answers the roll
	a.send("roll")
	both("roll a", a)
	b := dial(t, url+"/ws/room-a")
	both("connect b", b)
	c := dial(t, url+"/ws/room-b")
	both("connect c (another room)", c)
	d := dial(t, url+"/ws/room-c")
	both("connect d (a third room)", d)
}

func TestRandomness(t *testing.T) {
	testRandomness(t, stateroom.New(NewRandomness))
}
