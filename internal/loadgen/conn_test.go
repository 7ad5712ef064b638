package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestConnReadsEveryFrameShape: the reader handles what a server may send
// besides whole small frames: pings (answered with pongs), fragmented
// messages with a control frame in between, 16- and 64-bit lengths, binary,
// and a close with its code.
func TestConnReadsEveryFrameShape(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 70000) // 64-bit length
	mid := bytes.Repeat([]byte("m"), 300)   // 16-bit length
	pong := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer nc.Close()
		frames := []ws.Frame{
			ws.NewPingFrame([]byte("p1")),
			{Header: ws.Header{OpCode: ws.OpText, Length: 3}, Payload: []byte("hel")},
			ws.NewPingFrame([]byte("p2")),
			{Header: ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2}, Payload: []byte("lo")},
			ws.NewTextFrame(mid),
			ws.NewBinaryFrame(big),
			ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "slow consumer")),
		}
		for _, f := range frames {
			if err := ws.WriteFrame(nc, f); err != nil {
				return
			}
		}
		// Collect the client's pongs (and its close), unmasked.
		for {
			h, err := ws.ReadHeader(nc)
			if err != nil {
				return
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(nc, p); err != nil {
				return
			}
			ws.Cipher(p, h.Mask, 0)
			if h.OpCode == ws.OpPong && string(p) == "p2" {
				pong <- p
			}
		}
	}))
	defer srv.Close()
	c, err := dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, want := range []struct {
		op ws.OpCode
		p  []byte
	}{{ws.OpText, []byte("hello")}, {ws.OpText, mid}, {ws.OpBinary, big}} {
		op, p, err := c.next()
		if err != nil || op != want.op || !bytes.Equal(p, want.p) {
			t.Fatalf("next = %v %.20q (%d bytes) %v; want %v %.20q (%d bytes)", op, p, len(p), err, want.op, want.p, len(want.p))
		}
	}
	_, _, err = c.next()
	if !errors.Is(err, errClosed) || !strings.Contains(err.Error(), "4000") {
		t.Errorf("after the close frame: %v; want errClosed with code 4000", err)
	}
	select {
	case <-pong:
	case <-time.After(10 * time.Second):
		t.Error("the server got no pong for its ping")
	}
}
