package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
)

// BenchmarkClientRead compares the client-side cost of receiving one 64-byte
// text frame and decoding it as a bench message: the tool's reader, its
// general path on gobwas/ws alone, and coder/websocket (its reusable Reader API, the cheaper of
// its two). Both read from memory, an endless stream of pre-encoded frames
// as a coalescing server sends them, so ns/op is the client's work alone,
// not the kernel's or a server goroutine's.
//
//	go test -run '^$' -bench ClientRead -benchmem ./internal/loadgen/
func BenchmarkClientRead(b *testing.B) {
	for _, tc := range []struct {
		name string
		next func(*conn) (ws.OpCode, []byte, error)
	}{
		{"tool", (*conn).next},        // what the tool runs: in-place fast path
		{"gobwas", (*conn).nextFrame}, // gobwas/ws's header decoder + io.ReadFull for every frame
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := newFrameStream(b)
			c := &conn{nc: src, br: bufio.NewReaderSize(src, readBufferSize)}
			b.ReportAllocs()
			for b.Loop() {
				_, p, err := tc.next(c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := parseMessage(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("coder", func(b *testing.B) {
		src := newFrameStream(b)
		ctx := context.Background()
		c, _, err := websocket.Dial(ctx, "ws://bench/ws", &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: upgradeTo(src)},
		})
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

// frameStream is a net.Conn whose reads return 64-byte bench messages as
// server frames, without end; writes are discarded.
type frameStream struct {
	net.Conn // nil: only the methods below are used
	chunk    []byte
	off      int
}

func newFrameStream(b *testing.B) *frameStream {
	var chunk []byte
	for seq := uint64(0); len(chunk) < 64<<10; seq++ {
		f, err := ws.CompileFrame(ws.NewTextFrame(appendMessage(nil, 0, seq, 123456789, 64)))
		if err != nil {
			b.Fatal(err)
		}
		chunk = append(chunk, f...)
	}
	return &frameStream{chunk: chunk}
}

func (s *frameStream) Read(p []byte) (int, error) {
	n := copy(p, s.chunk[s.off:])
	s.off = (s.off + n) % len(s.chunk)
	return n, nil
}
func (s *frameStream) Write(p []byte) (int, error)      { return len(p), nil }
func (s *frameStream) Close() error                     { return nil }
func (s *frameStream) SetDeadline(time.Time) error      { return nil }
func (s *frameStream) SetReadDeadline(time.Time) error  { return nil }
func (s *frameStream) SetWriteDeadline(time.Time) error { return nil }
func (s *frameStream) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *frameStream) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// upgradeTo returns an http.RoundTripper that answers the WebSocket
// handshake itself and hands the client src as the upgraded connection.
func upgradeTo(src *frameStream) http.RoundTripper { return upgrader{src} }

type upgrader struct{ src *frameStream }

func (u upgrader) RoundTrip(r *http.Request) (*http.Response, error) {
	h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return &http.Response{
		StatusCode: http.StatusSwitchingProtocols,
		Header: http.Header{
			"Upgrade":              {"websocket"},
			"Connection":           {"Upgrade"},
			"Sec-Websocket-Accept": {base64.StdEncoding.EncodeToString(h[:])},
		},
		Body:    io.ReadWriteCloser(u.src),
		Request: r,
	}, nil
}
