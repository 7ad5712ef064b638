package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
)

// BenchmarkClientRead compares the cost of receiving one small text frame
// and decoding it as a bench message with the tool's gobwas/ws reader and
// with coder/websocket (its reusable Reader API, the cheaper of its two).
// The server writes pre-encoded frames in 64 KiB chunks, so the client's
// work dominates.
//
//	go test -run '^$' -bench ClientRead -benchmem ./internal/loadgen/
func BenchmarkClientRead(b *testing.B) {
	b.Run("gobwas", func(b *testing.B) {
		url := startBlaster(b)
		c, err := dial(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		defer c.close()
		b.ReportAllocs()
		for b.Loop() {
			_, p, err := c.next()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := parseMessage(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("coder", func(b *testing.B) {
		url := startBlaster(b)
		ctx := context.Background()
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			_, r, err := c.Reader(ctx)
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if _, err := buf.ReadFrom(r); err != nil {
				b.Fatal(err)
			}
			if _, err := parseMessage(buf.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// startBlaster serves a WebSocket endpoint that writes 64-byte bench
// messages until the client goes away.
func startBlaster(b *testing.B) string {
	b.Helper()
	var chunk []byte
	for seq := uint64(0); len(chunk) < 64<<10; seq++ {
		msg := appendMessage(nil, 0, seq, 123456789, 64)
		f, err := ws.CompileFrame(ws.NewTextFrame(msg))
		if err != nil {
			b.Fatal(err)
		}
		chunk = append(chunk, f...)
	}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer nc.Close()
		go func() { <-done; nc.Close() }()
		for {
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}))
	b.Cleanup(func() { close(done); srv.Close() })
	return "ws" + srv.URL[len("http"):] + "/ws"
}
