// Package sleeptest runs a service on a real server whose rooms hibernate
// as soon as they are idle, with real clients (package client), for tests
// that a service comes back right from hibernation: a woken instance must
// carry on with the clients that stayed connected.
//
// A test drives one room, waits with [Server.Asleep] until it hibernated,
// then sends the event that wakes it. The rooms hibernate after
// [IdleAfter], so on a busy machine they may also hibernate between any
// two steps: a service that wakes right sends the same messages either
// way, and the test asserts exactly that, with no timing in its
// assertions.
package sleeptest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
)

// IdleAfter is the server's HibernateAfter: short, so that a test waits
// little for a room to fall asleep.
const IdleAfter = 20 * time.Millisecond

// Timeout bounds every wait: for a message, for a room to fall asleep.
// It is a failure bound, not a measurement.
const Timeout = servertest.Timeout

// Server is a server for one room whose service hibernates when idle.
type Server struct {
	url     string
	metrics *prometheus.Registry
}

// Start serves f until the test ends, with rooms that hibernate after
// IdleAfter and no store.
func Start(t testing.TB, f stateroom.Factory) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	url := servertest.Start(t, f, server.Options{HibernateAfter: IdleAfter, Metrics: reg})
	return &Server{url: url, metrics: reg}
}

// Dial connects a client to room, closed when the test ends.
func (s *Server) Dial(t testing.TB, room string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, err := client.Dial(ctx, s.url, client.Options{Room: room})
	if err != nil {
		t.Fatalf("dialling room %q: %v", room, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{t: t, c: c}
}

// Asleep waits until the server's room is hibernating: it hibernated once
// more than it woke. The server must run one room only; the counts are the
// server's.
func (s *Server) Asleep(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		slept, woke := s.count(t, "stateroom_rooms_hibernated_total"), s.count(t, "stateroom_room_wakes_total")
		if slept > woke {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room did not hibernate within %v (hibernated %v times, woke %v)", Timeout, slept, woke)
		}
		time.Sleep(IdleAfter / 4) // polling a state, not waiting for it
	}
}

// count returns the value of the server's counter name, 0 before its first
// increment.
func (s *Server) count(t testing.TB, name string) float64 {
	t.Helper()
	families, err := s.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("the server has no metric %s", name)
	return 0
}

// Client is one real client of the room.
type Client struct {
	t testing.TB
	c *client.Conn
}

// Send sends text.
func (c *Client) Send(text string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.c.Send(ctx, stateroom.Text(text)); err != nil {
		c.t.Fatalf("sending %q: %v", text, err)
	}
}

// Expect checks that the client's next messages are want, in order.
func (c *Client) Expect(want ...string) {
	c.t.Helper()
	var got []string
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for len(got) < len(want) {
		select {
		case p, ok := <-c.c.Messages():
			if !ok {
				c.t.Fatalf("got %q, then the connection ended (%v); want %q", got, c.c.Err(), want)
			}
			got = append(got, p.String())
			if !slices.Equal(got, want[:len(got)]) {
				c.t.Fatalf("got %q, want %q", got, want)
			}
		case <-timeout.C:
			c.t.Fatalf("got %q within %v, want %q", got, Timeout, want)
		}
	}
}

// Close closes the client's connection and waits for it to end.
func (c *Client) Close() {
	c.t.Helper()
	if err := c.c.Close(); err != nil {
		c.t.Fatalf("closing: %v", err)
	}
}
