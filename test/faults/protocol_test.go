package faults_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
)

// maxMessage is the server's MaxMessageSize in the protocol tests.
const maxMessage = 4096

// badClient is one faulty client: what it writes after the handshake, and
// how the server must end it.
type badClient struct {
	name  string
	write func(c *wsclient.Raw) error
	// codes are the close codes the server may answer with.
	codes []stateroom.CloseCode
	// orNoClose also accepts an end without a close frame: after EOF in
	// the middle of a frame the client may be gone.
	orNoClose bool
	// gone: the client closes its own socket, so only the server side
	// (the client leaves the room) is checked.
	gone bool
}

// frames returns a write function that sends fs in one write.
func frames(fs ...wsclient.Frame) func(*wsclient.Raw) error {
	return func(c *wsclient.Raw) error { return c.WriteFrames(fs...) }
}

// rawBytes returns a write function that sends b.
func rawBytes(b []byte) func(*wsclient.Raw) error {
	return func(c *wsclient.Raw) error { _, err := c.Write(b); return err }
}

// thenHalfClose writes, then half-closes: the server reads EOF wherever
// the bytes left it, and the client can still read the answer.
func thenHalfClose(write func(*wsclient.Raw) error) func(*wsclient.Raw) error {
	return func(c *wsclient.Raw) error {
		if err := write(c); err != nil {
			return err
		}
		return c.CloseWrite()
	}
}

var protocolError = []stateroom.CloseCode{stateroom.CloseProtocolError}

// TestGarbageAndTruncatedFrames: clients that break the framing rules of
// RFC 6455 in every way the server can see are closed, with 1002 where a
// close frame can still be sent, while healthy clients in the same room
// keep exchanging messages and lose none.
func TestGarbageAndTruncatedFrames(t *testing.T) {
	text := func(s string) wsclient.Frame { return wsclient.Message(wsclient.OpText, []byte(s)) }
	cases := []badClient{
		{name: "unmasked frame", write: frames(wsclient.Frame{Fin: true, Op: wsclient.OpText, Payload: []byte("hi")}), codes: protocolError},
		{name: "reserved data opcode", write: frames(wsclient.Frame{Fin: true, Op: 0x3, Masked: true}), codes: protocolError},
		{name: "reserved control opcode", write: frames(wsclient.Frame{Fin: true, Op: 0xb, Masked: true}), codes: protocolError},
		{name: "RSV1 without an extension", write: frames(wsclient.Frame{Fin: true, RSV: 4, Op: wsclient.OpText, Masked: true, Payload: []byte("hi")}), codes: protocolError},
		{name: "RSV3 on a ping", write: frames(wsclient.Frame{Fin: true, RSV: 1, Op: wsclient.OpPing, Masked: true}), codes: protocolError},
		{name: "fragmented ping", write: frames(wsclient.Frame{Op: wsclient.OpPing, Masked: true}), codes: protocolError},
		{name: "ping over 125 bytes", write: frames(wsclient.Message(wsclient.OpPing, make([]byte, 126))), codes: protocolError},
		{name: "continuation with no message", write: frames(wsclient.Frame{Fin: true, Op: wsclient.OpContinuation, Masked: true, Payload: []byte("x")}), codes: protocolError},
		{name: "new message inside a fragmented one", write: frames(wsclient.Frame{Op: wsclient.OpText, Masked: true, Payload: []byte("a")}, text("b")), codes: protocolError},
		{name: "close with a 1-byte body", write: frames(wsclient.Message(wsclient.OpClose, []byte{3})), codes: protocolError},
		{name: "close with code 1005", write: frames(wsclient.Message(wsclient.OpClose, wsclient.CloseBody(1005, ""))), codes: protocolError},
		{name: "close with code 999", write: frames(wsclient.Message(wsclient.OpClose, wsclient.CloseBody(999, ""))), codes: protocolError},
		{name: "close with code 5000", write: frames(wsclient.Message(wsclient.OpClose, wsclient.CloseBody(5000, ""))), codes: protocolError},
		{name: "close reason not UTF-8", write: frames(wsclient.Message(wsclient.OpClose, wsclient.CloseBody(1000, "\xff"))), codes: []stateroom.CloseCode{stateroom.CloseProtocolError, stateroom.CloseInvalidPayload}},
		{name: "64-bit length with the top bit set", write: rawBytes([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}), codes: protocolError},
		{
			name:      "header promising more than is sent, then half-close",
			write:     thenHalfClose(frames(wsclient.Frame{Fin: true, Op: wsclient.OpBinary, Masked: true, Length: 1000, Payload: make([]byte, 10)})),
			codes:     protocolError,
			orNoClose: true,
		},
		{
			name:      "half a header, then half-close",
			write:     thenHalfClose(rawBytes([]byte{0x82, 0xfe, 0x01})),
			codes:     protocolError,
			orNoClose: true,
		},
		{
			name: "header promising more than is sent, then gone",
			write: func(c *wsclient.Raw) error {
				err := c.WriteFrames(wsclient.Frame{Fin: true, Op: wsclient.OpBinary, Masked: true, Length: 1000, Payload: make([]byte, 10)})
				c.Close()
				return err
			},
			gone: true,
		},
	}
	// Random bytes from fixed seeds: whatever they happen to parse as, the
	// server ends the connection, with a protocol-level code if any.
	for seed := range uint64(4) {
		b := make([]byte, 512)
		rng := rand.New(rand.NewPCG(seed, 7))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cases = append(cases, badClient{
			name:      "random bytes " + string(rune('0'+seed)),
			write:     thenHalfClose(rawBytes(b)),
			codes:     []stateroom.CloseCode{stateroom.CloseProtocolError, stateroom.CloseInvalidPayload, stateroom.CloseMessageTooBig},
			orNoClose: true,
		})
	}
	runBadClients(t, cases)
}

// TestOversizeAndInvalidText: a message over MaxMessageSize, however it
// is split, gets 1009, even when only its header was sent; text that is
// not UTF-8 gets 1007; healthy clients in the room are unaffected.
func TestOversizeAndInvalidText(t *testing.T) {
	tooBig := []stateroom.CloseCode{stateroom.CloseMessageTooBig}
	invalid := []stateroom.CloseCode{stateroom.CloseInvalidPayload}
	frag := func(op byte, fin bool, p []byte) wsclient.Frame {
		return wsclient.Frame{Fin: fin, Op: op, Masked: true, Payload: p}
	}
	big := bytes.Repeat([]byte("a"), maxMessage+1)
	runBadClients(t, []badClient{
		{name: "one frame over the limit", write: frames(wsclient.Message(wsclient.OpBinary, big)), codes: tooBig},
		{name: "fragments over the limit", write: frames(
			frag(wsclient.OpBinary, false, big[:1500]),
			frag(wsclient.OpContinuation, false, big[1500:3000]),
			frag(wsclient.OpContinuation, true, big[3000:]),
		), codes: tooBig},
		{name: "header declaring 1 GiB, no payload", write: frames(wsclient.Frame{Fin: true, Op: wsclient.OpBinary, Masked: true, Length: 1 << 30}), codes: tooBig},
		{name: "text not UTF-8", write: frames(wsclient.Message(wsclient.OpText, []byte("ok \xff\xfe"))), codes: invalid},
		{name: "text not UTF-8 across fragments", write: frames(
			frag(wsclient.OpText, false, []byte("ok \xc3")),
			frag(wsclient.OpContinuation, true, []byte("(")),
		), codes: invalid},
		{name: "truncated UTF-8 at the end of a message", write: frames(wsclient.Message(wsclient.OpText, []byte("caf\xc3"))), codes: invalid},
	})
}

// TestLegalEdgeMessages: the legal neighbours of the oversize and UTF-8
// cases, a message exactly at MaxMessageSize and UTF-8 split inside a
// character across fragments, come back from the relay whole.
func TestLegalEdgeMessages(t *testing.T) {
	frag := func(op byte, fin bool, p []byte) wsclient.Frame {
		return wsclient.Frame{Fin: fin, Op: op, Masked: true, Payload: p}
	}
	e := start(t, relay.Factory(), server.Options{MaxMessageSize: maxMessage})
	ctx := testContext(t)
	c, err := wsclient.DialRaw(ctx, e.url("edge"), wsclient.RawOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	atLimit := bytes.Repeat([]byte("b"), maxMessage)
	split := []byte("café ünïcödé")
	cut := bytes.IndexByte(split, 0xc3) + 1 // inside the two bytes of é
	if err := c.WriteFrames(
		wsclient.Message(wsclient.OpBinary, atLimit),
		frag(wsclient.OpText, false, split[:cut]),
		frag(wsclient.OpContinuation, true, split[cut:]),
	); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	for _, want := range []struct {
		op byte
		p  []byte
	}{{wsclient.OpBinary, atLimit}, {wsclient.OpText, split}} {
		f, err := c.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Op != want.op || !bytes.Equal(f.Payload, want.p) {
			t.Errorf("relayed back op %d, %d bytes %.20q; want op %d, %d bytes %.20q", f.Op, len(f.Payload), f.Payload, want.op, len(want.p), want.p)
		}
	}
}

// runBadClients runs each bad client against a room where healthy clients
// keep exchanging messages, checks how the server ends it, and finally
// that the healthy clients got every message.
func runBadClients(t *testing.T, cases []badClient) {
	t.Helper()
	e := start(t, relay.Factory(), server.Options{MaxMessageSize: maxMessage, MessageRate: server.NoLimit})
	ctx := testContext(t)
	const room = "shared"
	g, err := wsclient.JoinGroup(ctx, e.url(room), 3, wsclient.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	// Healthy traffic all along, paced so the room is busy but the
	// healthy queues stay short.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if err := g.SendAll(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	stopTraffic := sync.OnceFunc(func() { close(stop); traffic.Wait() })
	defer stopTraffic()

	for _, bc := range cases {
		t.Run(bc.name, func(t *testing.T) {
			c, err := wsclient.DialRaw(ctx, e.url(room), wsclient.RawOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			eventually(t, func() bool { return e.clients(room) == g.Len()+1 }, "the bad client to join")
			// A round of healthy messages on each side of the fault, on
			// top of the steady traffic.
			sendAll(t, g)
			if err := bc.write(c); err != nil {
				t.Fatalf("writing: %v", err)
			}
			sendAll(t, g)
			if !bc.gone {
				checkEnd(t, c, bc)
			}
			eventually(t, func() bool { return e.clients(room) == g.Len() }, "the server to drop the bad client (room has %d clients)", e.clients(room))
			sendAll(t, g)
			if err := g.WaitDelivered(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	stopTraffic()
	if err := g.WaitDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	sent, due, delivered := g.Counts()
	if sent == 0 {
		t.Fatal("the healthy clients sent nothing: the test did not run traffic")
	}
	t.Logf("healthy clients: %d messages sent, %d of %d deliveries", sent, delivered, due)
}

func sendAll(t *testing.T, g *wsclient.Group) {
	t.Helper()
	if err := g.SendAll(); err != nil {
		t.Fatal(err)
	}
}

// checkEnd reads what the server sends the bad client until the
// connection ends, and checks the close code.
func checkEnd(t *testing.T, c *wsclient.Raw, bc badClient) {
	t.Helper()
	closed, err := c.ReadClose(waitTimeout)
	switch {
	case errors.Is(err, wsclient.ErrNoCloseFrame):
		if !bc.orNoClose {
			t.Errorf("the connection ended without a close frame (%v); want close code %v", err, bc.codes)
		}
	case err != nil:
		t.Errorf("the server did not end the connection: %v", err)
	case !slices.Contains(bc.codes, closed.Code):
		t.Errorf("got close code %d %q; want one of %v", closed.Code, closed.Reason, bc.codes)
	default:
		t.Logf("closed with %d %q", closed.Code, closed.Reason)
	}
}
