package loadgen

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stateroom-go/stateroom/bench/hub"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
)

// relays are the servers every mode is tested against: the Stateroom
// server running bench/relay, and the gorilla baseline hub.
var relays = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"stateroom", startStateroom},
	{"hub", startHub},
}

// startStateroom serves bench/relay with package server on loopback, with
// no limits, as bench/relayserver runs it.
func startStateroom(t *testing.T) string {
	t.Helper()
	opts := server.Options{RoomGracePeriod: server.EndRoomsImmediately, Logger: slog.New(slog.DiscardHandler)}
	return servertest.Start(t, relay.Factory(), relay.Unlimited(opts)) + "/ws"
}

// wsURL turns an httptest server's URL into the tool's endpoint.
func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// startHub serves the gorilla baseline hub on loopback.
func startHub(t *testing.T) string {
	t.Helper()
	h, err := hub.New(hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		srv.Close()
	})
	return wsURL(srv)
}

// fault is what the faulty relay does wrong.
type fault int

const (
	faultDrop    fault = iota // never delivers the message
	faultDup                  // delivers the message twice
	faultReorder              // delivers the message after the next one
	faultSilent               // relays nothing at all
)

// faultyRelay is a relay that mistreats one message: the third bench
// message each client receives from another client. Senders get their own
// messages intact, so their windows never stall; every receive-only client
// suffers the fault exactly once.
//
// It is a server, so it is written on gorilla/websocket's server side (the
// stack of the baseline hub in bench/hub), not on package client: package
// server relays every message faithfully and cannot be made to drop,
// duplicate or reorder one.
type faultyRelay struct {
	fault    fault
	upgrader websocket.Upgrader

	mu    sync.Mutex
	rooms map[string][]*faultyConn
	conns sync.WaitGroup
}

type faultyConn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	others int    // bench messages received from other clients
	held   []byte // a message held back for faultReorder
}

func (c *faultyConn) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

func startFaulty(t *testing.T, f fault) string {
	t.Helper()
	fr := &faultyRelay{fault: f, rooms: make(map[string][]*faultyConn)}
	srv := httptest.NewServer(fr)
	t.Cleanup(func() {
		fr.mu.Lock()
		for _, cs := range fr.rooms {
			for _, c := range cs {
				_ = c.ws.Close()
			}
		}
		fr.mu.Unlock()
		fr.conns.Wait()
		srv.Close()
	})
	return wsURL(srv)
}

func (fr *faultyRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := fr.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	room := r.URL.Path
	me := &faultyConn{ws: ws}
	fr.mu.Lock()
	fr.rooms[room] = append(fr.rooms[room], me)
	fr.conns.Add(1)
	fr.mu.Unlock()
	go func() {
		defer fr.conns.Done()
		defer ws.Close()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			fr.mu.Lock() // one message at a time per server: a room's order
			for _, c := range fr.rooms[room] {
				fr.deliver(me, c, b)
			}
			fr.mu.Unlock()
		}
	}()
}

func (fr *faultyRelay) deliver(from, to *faultyConn, b []byte) {
	if fr.fault == faultSilent {
		return
	}
	if from == to || b[0] == 'j' {
		to.write(b)
		return
	}
	to.others++
	if to.others != 3 {
		to.write(b)
		if to.held != nil {
			to.write(to.held)
			to.held = nil
		}
		return
	}
	switch fr.fault {
	case faultDrop:
	case faultDup:
		to.write(b)
		to.write(b)
	case faultReorder:
		to.held = b
	}
}
