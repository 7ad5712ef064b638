//go:build linux

package netns_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// counterClient is a real client (package client) of a counter room: it
// records every value the room sends ("new value: N") and whether the
// values ever went backwards while it was connected.
type counterClient struct {
	t    *testing.T
	name string
	conn *client.Conn

	mu       sync.Mutex
	last     int
	seen     bool
	at       time.Time // when last arrived
	back     []string  // values that went backwards
	changed  chan struct{}
	finished chan struct{}
}

// Reconnection delays of the clients: a client closed by a gateway when
// the room's owner left retries within half a second, so the failover time
// measures the cluster, not the client's backoff (whose default grows to
// 10 s). A browser client's page chooses its own.
const (
	clientMinDelay = 100 * time.Millisecond
	clientMaxDelay = 500 * time.Millisecond
)

// dialCounter connects to room at addr (a forwarder's); reconnect says
// whether the client reconnects by itself. It is closed when the test ends.
func dialCounter(t *testing.T, name, addr, room string, reconnect bool) *counterClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var conn *client.Conn
	var err error
	// Dial's first connection is not retried by the client: a refusal that
	// says to try again (503 while a node that just rejoined catches up
	// with JetStream) is retried here, as an application would.
	for {
		conn, err = client.Dial(ctx, "ws://"+addr, client.Options{Room: room, Reconnect: reconnect,
			MinDelay: clientMinDelay, MaxDelay: clientMaxDelay, HandshakeTimeout: 10 * time.Second})
		he, refused := errors.AsType[*client.HandshakeError](err)
		if err == nil || !refused || !he.Temporary() || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(clientMinDelay):
		}
	}
	if err != nil {
		t.Fatalf("client %s: dial room %s: %v", name, room, err)
	}
	cc := &counterClient{t: t, name: name, conn: conn, changed: make(chan struct{}, 1), finished: make(chan struct{})}
	go cc.read()
	t.Cleanup(func() {
		conn.Close()
		<-cc.finished
	})
	return cc
}

func (cc *counterClient) read() {
	defer close(cc.finished)
	for p := range cc.conn.Messages() {
		s, ok := strings.CutPrefix(string(p.Data), "new value: ")
		if !ok {
			continue // "clients: N"
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		cc.mu.Lock()
		if cc.seen && v < cc.last {
			cc.back = append(cc.back, fmt.Sprintf("%d after %d", v, cc.last))
		}
		cc.last, cc.seen, cc.at = v, true, time.Now()
		cc.mu.Unlock()
		select {
		case cc.changed <- struct{}{}:
		default:
		}
	}
}

// value returns the last value and when it arrived.
func (cc *counterClient) value() (int, bool, time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.last, cc.seen, cc.at
}

// backwards returns the values that went backwards, if any.
func (cc *counterClient) backwards() []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return append([]string(nil), cc.back...)
}

// await waits until the last value is want, arrived after after (the room
// sends its value to every client that connects, so a value arrived after
// a fault shows that the client reached the room again), and returns
// when it arrived. It fails the test after timeout.
func (cc *counterClient) await(want int, after time.Time, timeout time.Duration) time.Time {
	cc.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if v, ok, at := cc.value(); ok && v == want && at.After(after) {
			return at
		}
		select {
		case <-cc.changed:
		case <-cc.finished:
			v, _, _ := cc.value()
			cc.t.Fatalf("client %s closed (%v) waiting for value %d; last value %d", cc.name, cc.conn.Err(), want, v)
		case <-deadline.C:
			v, ok, _ := cc.value()
			cc.t.Fatalf("client %s: no value %d within %v; last value %d (any: %v), state %v", cc.name, want, timeout, v, ok, cc.conn.State())
		}
	}
}

// send sends a command ("increment") without waiting.
func (cc *counterClient) send(cmd string) {
	cc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.conn.Send(ctx, stateroom.Text(cmd)); err != nil {
		cc.t.Fatalf("client %s: send %q: %v", cc.name, cmd, err)
	}
}

// closedWith waits until the client (one that does not reconnect) is
// closed, and returns the close code and when the close was seen.
func (cc *counterClient) closedWith(timeout time.Duration) (stateroom.CloseCode, time.Time) {
	cc.t.Helper()
	select {
	case <-cc.finished:
	case <-time.After(timeout):
		cc.t.Fatalf("client %s: not closed within %v", cc.name, timeout)
	}
	at := time.Now()
	var ce *client.CloseError
	if !errors.As(cc.conn.Err(), &ce) {
		cc.t.Fatalf("client %s ended with %v, not a close code", cc.name, cc.conn.Err())
	}
	return ce.Code, at
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
