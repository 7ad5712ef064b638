package wasmhost_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
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

// roomClient is one client of a test, through package client without
// reconnection, so that it sees the close the server sends.
type roomClient struct {
	t    *testing.T
	name string
	c    *client.Conn
}

func dial(t *testing.T, url, name string) *roomClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &roomClient{t, name, c}
}

func (c *roomClient) read() (stateroom.Payload, error) {
	return c.readBy(time.Now().Add(10 * time.Second))
}

// readBy returns the next message, or why the connection ended, or
// context.DeadlineExceeded if deadline passed first.
func (c *roomClient) readBy(deadline time.Time) (stateroom.Payload, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return c.c.Receive(ctx)
}

// expect reads the next message, which must be want (of its kind, text or
// binary).
func (c *roomClient) expect(want stateroom.Payload) {
	c.t.Helper()
	got, err := c.read()
	if err != nil {
		c.t.Fatalf("%s: waiting for %s: %v", c.name, describe(want), err)
	}
	if got.Binary != want.Binary || !bytes.Equal(got.Data, want.Data) {
		c.t.Fatalf("%s: got %s, want %s", c.name, describe(got), describe(want))
	}
}

// describe shows p for a failure: its kind, and its bytes (hex for binary).
func describe(p stateroom.Payload) string {
	if p.Binary {
		return "binary " + hex.EncodeToString(p.Data)
	}
	return fmt.Sprintf("text %q", p.Data)
}

// expectEvent reads the relay's envelope of an event: the event's bytes.
func (c *roomClient) expectEvent(eventHex string) {
	c.t.Helper()
	c.expect(binaryHex(c.t, eventHex))
}

// binaryHex is the binary payload whose bytes are hexadecimal h.
func binaryHex(t *testing.T, h string) stateroom.Payload {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return stateroom.Binary(b)
}

func (c *roomClient) send(p stateroom.Payload) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Send(ctx, p); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// command has the relay guest send a raw MessageFromProcess (hex).
func (c *roomClient) command(cmdHex string) {
	c.t.Helper()
	c.send(binaryHex(c.t, cmdHex))
}

// expectClose reads until the server closes the connection, which must be
// with code and reason.
func (c *roomClient) expectClose(code stateroom.CloseCode, reason string) {
	c.t.Helper()
	if !c.expectCloseBy(time.Now().Add(10*time.Second), code, reason) {
		c.t.Fatalf("%s: no close %d %q within 10 s", c.name, code, reason)
	}
}

// expectCloseBy is expectClose with a deadline; it reports false if the
// deadline passed first.
func (c *roomClient) expectCloseBy(deadline time.Time, code stateroom.CloseCode, reason string) bool {
	c.t.Helper()
	for {
		_, err := c.readBy(deadline)
		if err == nil {
			continue // messages queued before the close
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		ce, ok := errors.AsType[*client.CloseError](err)
		if !ok {
			c.t.Fatalf("%s: want close %d %q, got %v", c.name, code, reason, err)
		}
		if ce.Code != code || ce.Reason != reason {
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
	for _, c := range []*roomClient{a, b} {
		c.expectEvent(messageEvent(1, toEveryoneText))
		c.expect(stateroom.Text("x"))
	}

	const toTwoBytes = "00000000010000000200000000000000010000000000000009" // Client(2) Bytes([9])
	a.command(toTwoBytes)
	a.expectEvent(messageEvent(1, toTwoBytes))
	b.expectEvent(messageEvent(1, toTwoBytes))
	b.expect(stateroom.Binary([]byte{9}))

	const exceptTwo = "000000000200000002000000010000000000000000000000" // EveryoneExcept(2) Text("")
	a.command(exceptTwo)
	a.expectEvent(messageEvent(1, exceptTwo))
	a.expect(stateroom.Text(""))
	b.expectEvent(messageEvent(1, exceptTwo)) // and nothing else: b's next is the timer below

	b.command("0100000000000000") // SetTimer{0}
	a.expectEvent(messageEvent(2, "0100000000000000"))
	b.expectEvent(messageEvent(2, "0100000000000000"))
	a.expectEvent("04000000") // Timer
	b.expectEvent("04000000")

	_ = b.c.Close()
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
	a.send(stateroom.Text("t"))
	a.expectClose(stateroom.CloseServiceFault, "wasm trap")
	b.expectClose(stateroom.CloseServiceFault, "wasm trap")

	c := dial(t, url, "c")
	c.expectEvent("0100000001000000") // a fresh room: ids start again at 1
	c.send(stateroom.Text("p"))
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
	a.send(stateroom.Text("l"))
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
	a.expect(stateroom.Text("x"))
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
	a.expect(stateroom.Text("x")) // the next message: the bad one never came

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
