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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// serve runs the relay guest behind a real server on loopback.
func serve(t *testing.T, opts wasmhost.Options) (url string) {
	t.Helper()
	url, _ = serveWith(t, opts, server.Options{})
	return url
}

// serveWith is serve with server options (its grace period and logger are
// set here); it also returns the module.
func serveWith(t *testing.T, opts wasmhost.Options, sopts server.Options) (url string, mod *wasmhost.Module) {
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
	sopts.RoomGracePeriod, sopts.Logger = server.EndRoomsImmediately, opts.Logger
	return servertest.Start(t, mod, sopts) + "/ws/", mod
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
	return c.readBy(time.Now().Add(10 * time.Second))
}

func (c *client) readBy(deadline time.Time) (websocket.MessageType, []byte, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
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
func (c *client) expectClose(code stateroom.CloseCode, reason string) {
	c.t.Helper()
	if !c.expectCloseBy(time.Now().Add(10*time.Second), code, reason) {
		c.t.Fatalf("%s: no close %d %q within 10 s", c.name, code, reason)
	}
}

// expectCloseBy is expectClose with a deadline; it reports false if the
// deadline passed first.
func (c *client) expectCloseBy(deadline time.Time, code stateroom.CloseCode, reason string) bool {
	c.t.Helper()
	for {
		_, _, err := c.readBy(deadline)
		if err == nil {
			continue // messages queued before the close
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("%s: want close %d %q, got %v", c.name, code, reason, err)
		}
		if ce.Code != websocket.StatusCode(code) || ce.Reason != reason {
			c.t.Fatalf("%s: closed with %d %q, want %d %q", c.name, ce.Code, ce.Reason, code, reason)
		}
		return true
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
//
// The close must come within ten budgets (two seconds at least): were the
// budget broken, the test fails then, and closes the module so that the
// server's shutdown does not wait on the spinning room.
func TestEndToEndBudget(t *testing.T) {
	const budget = 100 * time.Millisecond
	url, mod := serveWith(t, wasmhost.Options{EventBudget: budget}, server.Options{})
	a := dial(t, url+"spin", "a")
	a.expectEvent("0100000001000000")
	a.write(websocket.MessageText, []byte("l"))
	deadline := max(10*budget, 2*time.Second) // as budgetDeadline in main_test.go
	if !a.expectCloseBy(time.Now().Add(deadline), stateroom.CloseServiceFault, "wasm event budget exceeded") {
		_ = mod.Close(context.Background())
		t.Fatalf("no close %v after the guest began to loop under a %v budget: the budget did not stop it", deadline, budget)
	}
}

// TestEndToEndClose: a guest's Close (the ABI's extension) closes one
// client with the guest's code and reason, after the messages sent to it
// before; the others stay and the guest hears of the Disconnect. A code a
// service may not use is ignored and the room goes on.
func TestEndToEndClose(t *testing.T) {
	url := serve(t, wasmhost.Options{}) + "closing"
	a := dial(t, url, "a")
	a.expectEvent("0100000001000000")
	b := dial(t, url, "b")
	a.expectEvent("0100000002000000")
	b.expectEvent("0100000002000000")

	const closeB = "020000000200000004100300000000000000627965" // Close{2, 4100, "bye"}
	a.command(closeB)
	a.expectEvent(messageEvent(1, closeB))
	b.expectEvent(messageEvent(1, closeB)) // sent before the close: delivered
	b.expectClose(4100, "bye")
	a.expectEvent("0200000002000000") // Disconnect{2}

	const closeAWithFault = "0200000001000000f3030000000000000000" // Close{1, 1011, ""}: not a service's code
	a.command(closeAWithFault)
	a.expectEvent(messageEvent(1, closeAWithFault))
	const toEveryoneText = "000000000000000001000000010000000000000078"
	a.command(toEveryoneText)
	a.expectEvent(messageEvent(1, toEveryoneText))
	a.expect(websocket.MessageText, "x")
}

// TestEndToEndInvalidUTF8: text a guest sends that is not valid UTF-8 is
// dropped by the room and counted, as for a native service; the room and
// its instance go on.
func TestEndToEndInvalidUTF8(t *testing.T) {
	reg := prometheus.NewRegistry()
	url, _ := serveWith(t, wasmhost.Options{}, server.Options{Metrics: reg})
	url += "utf8"
	a := dial(t, url, "a")
	a.expectEvent("0100000001000000")

	const badText = "0000000000000000010000000100000000000000ff" // Message{Broadcast, Text(ff)}
	a.command(badText)
	a.expectEvent(messageEvent(1, badText))
	const toEveryoneText = "000000000000000001000000010000000000000078"
	a.command(toEveryoneText)
	a.expectEvent(messageEvent(1, toEveryoneText))
	a.expect(websocket.MessageText, "x") // the next message: the bad one never came

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dropped float64 = -1
	for _, f := range families {
		if f.GetName() != "stateroom_deliveries_dropped_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "invalid_utf8" {
					dropped = m.GetCounter().GetValue()
				}
			}
		}
	}
	if dropped != 1 {
		t.Errorf("stateroom_deliveries_dropped_total{reason=\"invalid_utf8\"} = %v, want 1 (-1: not found)", dropped)
	}
}
