package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
)

// TestShutdownUnderLoad: Shutdown while every room is busy relaying. Every
// client, mid-stream, gets 1001 (CloseGoingAway) after the messages queued
// for it; Shutdown returns nil; no goroutine is left.
func TestShutdownUnderLoad(t *testing.T) {
	const (
		rooms      = 4
		perRoom    = 5
		maxPerSend = 10_000 // messages per sender: the stream lasts 10 s at most
		pace       = time.Millisecond
	)
	checkLeaks(t)
	srv, err := server.New(relay.Factory(), server.Options{
		MessageRate:       server.NoLimit,
		SendQueueMessages: rooms * perRoom * maxPerSend, // more than a room can ever queue
		Logger:            quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	base := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/"

	type loadClient struct {
		conn     *client.Conn
		received atomic.Int64
		code     atomic.Int64 // the close code it got; -1 for an end without one
	}
	var clients []*loadClient
	var readers, senders sync.WaitGroup
	defer func() {
		senders.Wait()
		readers.Wait()
		for _, c := range clients {
			c.conn.Close()
		}
	}()
	for r := range rooms {
		for range perRoom {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			conn, err := client.Dial(ctx, fmt.Sprintf("%sload-%d", base, r), client.Options{})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			c := &loadClient{conn: conn}
			clients = append(clients, c)
			readers.Go(func() {
				for range conn.Messages() {
					c.received.Add(1)
				}
				if ce, ok := errors.AsType[*client.CloseError](conn.Err()); ok {
					c.code.Store(int64(ce.Code))
				} else {
					c.code.Store(-1)
				}
			})
		}
	}
	eventually(t, func() bool { return len(srv.Rooms()) == rooms && srv.Rooms()[rooms-1].Clients == perRoom }, "every client to join")

	// One sender per room streams until its writes fail (the close).
	var sent atomic.Int64
	for r := range rooms {
		c := clients[r*perRoom]
		senders.Go(func() {
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for i := range maxPerSend {
				if c.conn.Send(context.Background(), stateroom.Text(fmt.Sprintf("load %d", i))) != nil {
					return
				}
				sent.Add(1)
				<-tick.C
			}
		})
	}
	eventually(t, func() bool {
		for _, c := range clients {
			if c.received.Load() < 50 {
				return false
			}
		}
		return true
	}, "messages to flow to every client")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	began := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown took %v with %d messages sent", time.Since(began).Round(time.Millisecond), sent.Load())
	readers.Wait()
	for i, c := range clients {
		if got := c.code.Load(); got != int64(stateroom.CloseGoingAway) {
			t.Errorf("client %d (room %d) ended with close code %d after %d messages; want %d (CloseGoingAway)", i, i/perRoom, got, c.received.Load(), stateroom.CloseGoingAway)
		}
	}
	if n := sent.Load(); n >= rooms*maxPerSend {
		t.Errorf("the senders finished all %d messages before Shutdown: it did not happen under load", n)
	}
}
