package wsclient

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/stateroom-go/stateroom"
)

// Opcodes of RFC 6455, section 5.2.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xa
)

// CloseNoStatus is the code ReadClose reports for a close frame with no
// body (RFC 6455, section 7.4.1: 1005 is never sent, only reported).
const CloseNoStatus stateroom.CloseCode = 1005

// MaxFrame bounds the payload of a frame ReadFrame accepts, so a faulty
// server cannot make a test allocate without limit.
const MaxFrame = 16 << 20

// Errors of a raw connection.
var (
	// ErrHandshake: the server did not accept the WebSocket handshake.
	ErrHandshake = errors.New("wsclient: handshake refused")
	// ErrNoCloseFrame: the connection ended without a close frame.
	ErrNoCloseFrame = errors.New("wsclient: connection ended without a close frame")
	// ErrFrame: the server sent a frame this client cannot read.
	ErrFrame = errors.New("wsclient: bad frame from the server")
)

// RawOptions configures [DialRaw]. The zero value is usable.
type RawOptions struct {
	// BufferSize is the size of the buffered reader frames are parsed from.
	// Zero means 64 KiB.
	BufferSize int
}

// Raw is the client end of a WebSocket connection at the byte level: after
// the handshake it writes whatever frames or bytes it is given, valid or
// not, and reads the server's frames one by one. One goroutine may read
// (ReadFrame, ReadClose) while another writes (WriteFrames, Write); Close
// may be called at any time.
type Raw struct {
	nc   net.Conn
	br   *bufio.Reader
	buf  []byte
	wbuf []byte
}

// DialRaw connects to a ws:// URL over TCP and completes the opening
// handshake by hand.
func DialRaw(ctx context.Context, rawURL string, opts RawOptions) (*Raw, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ws" {
		return nil, fmt.Errorf("wsclient: %q is not a ws:// URL (%v); give ws://host:port/path", rawURL, err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("wsclient: dialing %s: %w", u.Host, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	size := opts.BufferSize
	if size <= 0 {
		size = 64 << 10
	}
	br := bufio.NewReaderSize(nc, size)
	if err := handshake(nc, br, u); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return &Raw{nc: nc, br: br}, nil
}

// websocketGUID is the constant of RFC 6455, section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// handshake writes the opening request and checks the server's answer.
func handshake(nc net.Conn, br *bufio.Reader, u *url.URL) error {
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return fmt.Errorf("wsclient: writing the handshake: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("wsclient: reading the handshake answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return fmt.Errorf("%w: %s: %s", ErrHandshake, resp.Status, body)
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%w: Sec-WebSocket-Accept is %q, want %q", ErrHandshake, got, want)
	}
	return nil
}

// Frame is one WebSocket frame as a client sends it. Build the usual ones
// with [Message]; set the fields by hand for broken ones.
type Frame struct {
	// Fin marks the last frame of a message.
	Fin bool
	// RSV holds the three reserved bits (0-7); nonzero is a protocol error
	// without an extension that defines them.
	RSV byte
	// Op is the opcode (4 bits).
	Op byte
	// Masked says whether the payload is masked, as every client frame
	// must be; false makes a protocol error.
	Masked bool
	// Length, when nonzero, is the payload length written in the header
	// instead of len(Payload): a frame that promises more than it sends.
	Length uint64
	// Payload is the payload, unmasked.
	Payload []byte
}

// Message returns a whole, masked frame: the way a well-behaved client
// sends a message or a control frame.
func Message(op byte, payload []byte) Frame {
	return Frame{Fin: true, Op: op, Masked: true, Payload: payload}
}

// CloseBody returns the body of a close frame carrying code and reason.
func CloseBody(code stateroom.CloseCode, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	return append(b, reason...)
}

// AppendFrame appends the encoding of f to dst, with a fixed mask when f is
// masked (the mask's value does not matter to a server; a fixed one keeps
// fuzz seeds and tests reproducible).
func AppendFrame(dst []byte, f Frame) []byte {
	b0 := f.Op&0x0f | (f.RSV&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	n := f.Length
	if n == 0 {
		n = uint64(len(f.Payload))
	}
	var maskBit byte
	if f.Masked {
		maskBit = 0x80
	}
	switch {
	case n < 126:
		dst = append(dst, b0, maskBit|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, maskBit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if !f.Masked {
		return append(dst, f.Payload...)
	}
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, f.Payload...)
	for i := range f.Payload {
		dst[start+i] ^= mask[i&3]
	}
	return dst
}

// WriteFrames writes the frames with a single write call.
func (c *Raw) WriteFrames(fs ...Frame) error {
	c.wbuf = c.wbuf[:0]
	for _, f := range fs {
		c.wbuf = AppendFrame(c.wbuf, f)
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

// Write writes raw bytes to the connection: garbage, half a frame, anything.
func (c *Raw) Write(b []byte) (int, error) { return c.nc.Write(b) }

// CloseWrite half-closes the connection: the server reads EOF while the
// client can still read what the server sends.
func (c *Raw) CloseWrite() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return c.nc.Close()
}

// Close closes the socket at once, without a close frame: an abrupt
// disconnect.
func (c *Raw) Close() error { return c.nc.Close() }

// SetReadDeadline bounds the reads of ReadFrame and ReadClose.
func (c *Raw) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// ServerFrame is one frame the server sent. Payload is valid until the
// next read.
type ServerFrame struct {
	Fin     bool
	Op      byte
	Payload []byte
}

// ReadFrame reads the next frame from the server. It unmasks a masked
// frame (a server must not mask; the caller may check) and refuses a
// payload over MaxFrame.
func (c *Raw) ReadFrame() (ServerFrame, error) {
	return readFrame(c.br, &c.buf)
}

// readFrame reads one frame from br, using *buf for its payload when the
// frame is not wholly in br's buffer.
func readFrame(br *bufio.Reader, buf *[]byte) (ServerFrame, error) {
	h, err := br.Peek(2)
	if err != nil {
		return ServerFrame{}, eofAsUnexpected(err, len(h))
	}
	f := ServerFrame{Fin: h[0]&0x80 != 0, Op: h[0] & 0x0f}
	masked := h[1]&0x80 != 0
	hl := 2
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if masked {
		hl += 4
	}
	if h, err = br.Peek(hl); err != nil {
		return ServerFrame{}, eofAsUnexpected(err, 1)
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:])
	}
	if n > MaxFrame {
		return ServerFrame{}, fmt.Errorf("%w: a %d-byte payload; the limit is %d", ErrFrame, n, MaxFrame)
	}
	var mask [4]byte
	if masked {
		copy(mask[:], h[hl-4:])
	}
	if total := hl + int(n); total <= br.Size() {
		// The usual case: the whole frame fits the buffer, so the
		// payload is returned in place without a copy.
		b, err := br.Peek(total)
		if err != nil {
			return ServerFrame{}, eofAsUnexpected(err, 1)
		}
		f.Payload = b[hl:]
		br.Discard(total)
	} else {
		br.Discard(hl)
		if cap(*buf) < int(n) {
			*buf = make([]byte, n)
		}
		f.Payload = (*buf)[:n]
		if _, err := io.ReadFull(br, f.Payload); err != nil {
			return ServerFrame{}, eofAsUnexpected(err, 1)
		}
	}
	if masked {
		for i := range f.Payload {
			f.Payload[i] ^= mask[i&3]
		}
	}
	return f, nil
}

// eofAsUnexpected turns io.EOF after part of a frame into
// io.ErrUnexpectedEOF; had is how many bytes of the frame were read.
func eofAsUnexpected(err error, had int) error {
	if err == io.EOF && had > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Closed is how a connection ended, as [Raw.ReadClose] saw it.
type Closed struct {
	// Code is the close code of the server's close frame, CloseNoStatus
	// for a close frame with no body. It is typed so that it compares
	// with the stateroom.Close* constants as they are.
	Code stateroom.CloseCode
	// Reason is the close frame's reason.
	Reason string
	// Frames counts the data frames read before the close frame.
	Frames int
}

// ReadClose reads and discards frames until the server's close frame, and
// reports it. It returns ErrNoCloseFrame, wrapping the read error, if the
// connection ends first. It does not answer the close: call Close.
func (c *Raw) ReadClose(timeout time.Duration) (Closed, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	defer c.nc.SetReadDeadline(time.Time{})
	var cl Closed
	for {
		f, err := c.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return cl, fmt.Errorf("wsclient: no close frame within %v: %w", timeout, err)
			}
			return cl, fmt.Errorf("%w: %w", ErrNoCloseFrame, err)
		}
		switch f.Op {
		case OpClose:
			cl.Code, cl.Reason = ParseClose(f.Payload)
			return cl, nil
		case OpText, OpBinary, OpContinuation:
			cl.Frames++
		}
	}
}

// ParseClose splits the body of a close frame into its code (CloseNoStatus
// for an empty body) and reason.
func ParseClose(p []byte) (stateroom.CloseCode, string) {
	if len(p) < 2 {
		return CloseNoStatus, ""
	}
	return stateroom.CloseCode(binary.BigEndian.Uint16(p)), string(p[2:])
}
