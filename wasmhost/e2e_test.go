package wasmhost_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// serve runs the relay guest behind a real server on loopback.
func serve(t *testing.T, opts wasmhost.Options) (url string) {
	t.Helper()
	opts.DisableCache = true
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	mod, err := wasmhost.Load(context.Background(), filepath.Join("testdata", "relay.wasm"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs after the server's shutdown, registered later
		if err := mod.Close(context.Background()); err != nil {
			t.Errorf("Module.Close: %v", err)
		}
	})
	return servertest.Start(t, mod, server.Options{RoomGracePeriod: server.EndRoomsImmediately, Logger: opts.Logger}) + "/ws/"
}

// client is one WebSocket client of a test.
type client struct {
	t    *testing.T
	name string
	c    *websocket.Conn
}

func dial(t *testing.T, url, name string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &client{t, name, c}
}

func (c *client) read() (websocket.MessageType, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.c.Read(ctx)
}

// expect reads the next message, which must be of kind typ holding want
// (hex for binary).
func (c *client) expect(typ websocket.MessageType, want string) {
	c.t.Helper()
	gotTyp, data, err := c.read()
	if err != nil {
		c.t.Fatalf("%s: waiting for %v %s: %v", c.name, typ, want, err)
	}
	got := string(data)
	if typ == websocket.MessageBinary {
		got = hex.EncodeToString(data)
	}
	if gotTyp != typ || got != want {
		c.t.Fatalf("%s: got %v %q, want %v %q", c.name, gotTyp, got, typ, want)
	}
}

// expectEvent reads the relay's envelope of an event: the event's bytes.
func (c *client) expectEvent(eventHex string) {
	c.t.Helper()
	c.expect(websocket.MessageBinary, eventHex)
}

func (c *client) write(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// command has the relay guest send a raw MessageFromProcess (hex).
func (c *client) command(cmdHex string) {
	c.t.Helper()
	b, err := hex.DecodeString(cmdHex)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(websocket.MessageBinary, b)
}

// expectClose reads until the server closes the connection, which must be
// with code and reason.
func (c *client) expectClose(code websocket.StatusCode, reason string) {
	c.t.Helper()
	for {
		_, _, err := c.read()
		if err == nil {
			continue // messages queued before the close
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("%s: want close %d %q, got %v", c.name, code, reason, err)
		}
		if ce.Code != code || ce.Reason != reason {
			c.t.Fatalf("%s: closed with %d %q, want %d %q", c.name, ce.Code, ce.Reason, code, reason)
		}
		return
	}
}

// messageEvent is the hex of a Message event from sender carrying a binary
// payload (a relay command).
func messageEvent(sender byte, cmdHex string) string {
	n := len(cmdHex) / 2
	return hex.EncodeToString([]byte{3, 0, 0, 0, sender, 0, 0, 0, 0, 0, 0, 0, byte(n), 0, 0, 0, 0, 0, 0, 0}) + cmdHex
}

// TestEndToEnd runs the relay guest behind the real server: events reach
// the guest with the ABI's encoding, and the guest's sends reach the right
// clients with text kept as text and bytes as bytes; its timer fires.
func TestEndToEnd(t *testing.T) {
	url := serve(t, wasmhost.Options{}) + "lobby"
	a := dial(t, url, "a")
	a.expectEvent("0100000001000000") // Connect{1}; Init ran before, with no one to see it
	b := dial(t, url, "b")
	a.expectEvent("0100000002000000")
	b.expectEvent("0100000002000000")

	const toEveryoneText = "000000000000000001000000010000000000000078" // Broadcast Text("x")
	a.command(toEveryoneText)
	for _, c := range []*client{a, b} {
		c.expectEvent(messageEvent(1, toEveryoneText))
		c.expect(websocket.MessageText, "x")
	}

	const toTwoBytes = "00000000010000000200000000000000010000000000000009" // Client(2) Bytes([9])
	a.command(toTwoBytes)
	a.expectEvent(messageEvent(1, toTwoBytes))
	b.expectEvent(messageEvent(1, toTwoBytes))
	b.expect(websocket.MessageBinary, "09")

	const exceptTwo = "000000000200000002000000010000000000000000000000" // EveryoneExcept(2) Text("")
	a.command(exceptTwo)
	a.expectEvent(messageEvent(1, exceptTwo))
	a.expect(websocket.MessageText, "")
	b.expectEvent(messageEvent(1, exceptTwo)) // and nothing else: b's next is the timer below

	b.command("0100000000000000") // SetTimer{0}
	a.expectEvent(messageEvent(2, "0100000000000000"))
	b.expectEvent(messageEvent(2, "0100000000000000"))
	a.expectEvent("04000000") // Timer
	b.expectEvent("04000000")

	_ = b.c.Close(websocket.StatusNormalClosure, "")
	a.expectEvent("0200000002000000") // Disconnect{2}
}

// TestEndToEndFault: a guest that traps ends its room: every client is
// closed with 1011 and the fault's reason, and the next connection gets a
// fresh instance.
func TestEndToEndFault(t *testing.T) {
	url := serve(t, wasmhost.Options{}) + "doomed"
	a := dial(t, url, "a")
	a.expectEvent("0100000001000000")
	b := dial(t, url, "b")
	a.expectEvent("0100000002000000")
	b.expectEvent("0100000002000000")
	a.write(websocket.MessageText, []byte("t"))
	a.expectClose(stateroom.CloseServiceFault, "wasm trap")
	b.expectClose(stateroom.CloseServiceFault, "wasm trap")

	c := dial(t, url, "c")
	c.expectEvent("0100000001000000") // a fresh room: ids start again at 1
	c.write(websocket.MessageText, []byte("p"))
	c.expectEvent("030000000100000001000000010000000000000070") // it still works
}

// TestEndToEndBudget: a guest that loops forever is stopped by the event
// budget; its clients learn why.
func TestEndToEndBudget(t *testing.T) {
	url := serve(t, wasmhost.Options{EventBudget: 100 * time.Millisecond}) + "spin"
	a := dial(t, url, "a")
	a.expectEvent("0100000001000000")
	a.write(websocket.MessageText, []byte("l"))
	a.expectClose(stateroom.CloseServiceFault, "wasm event budget exceeded")
}
