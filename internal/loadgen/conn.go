package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// maxFrame bounds the size of a message the tool accepts, so a misbehaving
// server cannot make it allocate without limit.
const maxFrame = 16 << 20

// readBufferSize is the read buffer per connection: one syscall carries many
// small frames, and it is small enough for tens of thousands of
// connections.
const readBufferSize = 4096

// errClosed is returned by conn.next after the server closed the connection.
var errClosed = errors.New("loadgen: the server closed the connection")

// conn is the client side of one WebSocket connection, on gobwas/ws's
// low-level frame API: a frame header is decoded into a reused buffer and
// its payload into another, so reading a frame does not allocate (see
// BenchmarkClientRead for the comparison with coder/websocket).
type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	hdr [ws.MaxHeaderSize]byte
	buf []byte // payload of the current message

	wmu  sync.Mutex // serialises writers: a sender and the reader's pong
	whdr [ws.MaxHeaderSize]byte
	wbuf []byte // frames being written
	pbuf []byte // a message being built
	rng  *rand.ChaCha8

	closeOnce sync.Once
}

// dial opens a WebSocket connection to url.
func dial(ctx context.Context, url string) (*conn, error) {
	d := ws.Dialer{Timeout: 10 * time.Second}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			return nil, fmt.Errorf("loadgen: connecting to %s: %w: raise the open-file limit (ulimit -n; the hard limit is ulimit -Hn) or open fewer connections", url, err)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("loadgen: connecting to %s: %w: is the server running there? (go run ./bench/relayserver serves the relay on 127.0.0.1:8080)", url, err)
		}
		return nil, fmt.Errorf("loadgen: connecting to %s: %w", url, err)
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, readBufferSize)
	}
	// Otherwise the server sent frames right behind its handshake and br,
	// a buffered reader on nc, holds them: keep reading through it.
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	return &conn{nc: nc, br: br, rng: rand.NewChaCha8(seed)}, nil
}

// next returns the next data message. It answers pings, skips pongs, and
// returns errClosed when the server closes. The payload is valid until the
// next call.
func (c *conn) next() (op ws.OpCode, payload []byte, err error) {
	if op, payload, ok := c.nextBuffered(); ok {
		return op, payload, nil
	}
	return c.nextFrame()
}

// nextFrame is next for any frame sequence, on gobwas/ws's header decoder:
// control frames, fragments, frames not yet fully read.
func (c *conn) nextFrame() (op ws.OpCode, payload []byte, err error) {
	c.buf = c.buf[:0]
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:0:len(c.hdr)])
		if err != nil {
			return 0, nil, err
		}
		if h.Length > maxFrame || int64(len(c.buf))+h.Length > maxFrame {
			return 0, nil, fmt.Errorf("loadgen: the server sent a %d-byte frame; the tool accepts at most %d", h.Length, maxFrame)
		}
		n := len(c.buf)
		if h.OpCode.IsControl() {
			// A control frame may come between the fragments of a data
			// message: read it behind the data collected so far.
			c.buf = grow(c.buf, int(h.Length))
			ctl := c.buf[n : n+int(h.Length)]
			if _, err := io.ReadFull(c.br, ctl); err != nil {
				return 0, nil, err
			}
			if h.Masked {
				ws.Cipher(ctl, h.Mask, 0)
			}
			c.buf = c.buf[:n]
			switch h.OpCode {
			case ws.OpPing:
				if err := c.write(ws.OpPong, ctl); err != nil {
					return 0, nil, err
				}
			case ws.OpClose:
				if len(ctl) < 2 {
					return 0, nil, fmt.Errorf("%w (no close code)", errClosed)
				}
				code, reason := ws.ParseCloseFrameData(ctl)
				return 0, nil, fmt.Errorf("%w (code %d %q)", errClosed, code, reason)
			}
			continue
		}
		c.buf = grow(c.buf, int(h.Length))
		if _, err := io.ReadFull(c.br, c.buf[n:n+int(h.Length)]); err != nil {
			return 0, nil, err
		}
		c.buf = c.buf[:n+int(h.Length)]
		if h.OpCode != ws.OpContinuation {
			op = h.OpCode
		}
		if h.Fin {
			return op, c.buf, nil
		}
	}
}

// nextBuffered is the fast path of next, for the common frame: a whole,
// unfragmented, unmasked data frame already in the read buffer. It returns
// the payload in place, without copying it, and without the reads behind
// ws.ReadHeaderBuffer and io.ReadFull: a server that coalesces frames into
// one write (as Stateroom does) sends dozens per read, so the per-frame cost
// here is the tool's budget. Anything else goes the general way.
func (c *conn) nextBuffered() (ws.OpCode, []byte, bool) {
	b, err := c.br.Peek(2)
	if err != nil {
		return 0, nil, false
	}
	const fin, rsv, masked = 0x80, 0x70, 0x80
	op := ws.OpCode(b[0] & 0x0f)
	if b[0]&fin == 0 || b[0]&rsv != 0 || b[1]&masked != 0 || (op != ws.OpText && op != ws.OpBinary) {
		return 0, nil, false
	}
	hdr, n := 2, int(b[1]&0x7f)
	switch n {
	case 127:
		return 0, nil, false
	case 126:
		if c.br.Buffered() < 4 {
			return 0, nil, false
		}
		b, _ = c.br.Peek(4)
		hdr, n = 4, int(binary.BigEndian.Uint16(b[2:4]))
	}
	if c.br.Buffered() < hdr+n {
		return 0, nil, false
	}
	frame, _ := c.br.Peek(hdr + n)
	_, _ = c.br.Discard(hdr + n) // the bytes stay in place until the next read
	return op, frame[hdr:], true
}

// grow makes room for n more bytes after len(b) and returns b resliced to
// include them.
func grow(b []byte, n int) []byte {
	if need := len(b) + n; need > cap(b) {
		nb := make([]byte, len(b), max(need, 2*cap(b), 512))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// write sends one masked frame in a single write call.
func (c *conn) write(op ws.OpCode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = c.appendFrame(c.wbuf[:0], op, payload)
	_, err := c.nc.Write(c.wbuf)
	return err
}

// writeMessages sends n messages in a single write call, message i being
// what msg(i, scratch) returns; msg may build it in scratch. One write
// for a batch spares the tool a syscall per message.
func (c *conn) writeMessages(op ws.OpCode, n int, msg func(i int, scratch []byte) []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = c.wbuf[:0]
	for i := range n {
		c.pbuf = msg(i, c.pbuf[:0])
		c.wbuf = c.appendFrame(c.wbuf, op, c.pbuf)
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

// appendFrame appends payload as one masked frame (clients must mask, RFC
// 6455 section 5.3) to dst. It uses the connection's random source: call
// it under wmu.
func (c *conn) appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	var mask [4]byte
	m := c.rng.Uint64()
	mask[0], mask[1], mask[2], mask[3] = byte(m), byte(m>>8), byte(m>>16), byte(m>>24)
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: mask, Length: int64(len(payload))}
	w := sliceWriter{b: dst}
	_ = ws.WriteHeaderBuffer(&w, h, c.whdr[:]) // cannot fail: the buffer is MaxHeaderSize and the length valid
	start := len(w.b)
	w.b = append(w.b, payload...)
	ws.Cipher(w.b[start:], mask, 0)
	return w.b
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// close sends a normal close frame, best effort, and closes the socket.
// Later calls do nothing.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		_ = c.nc.Close()
	})
}
