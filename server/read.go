package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stateroom-go/stateroom"
)

// messageReader reads whole client messages from a server-side WebSocket
// stream. It leaves frame parsing, unmasking, fragment reassembly, the
// size limit and the UTF-8 check to wsutil.Reader, and handles control
// frames (between messages or between the fragments of one) itself.
type messageReader struct {
	rd  wsutil.Reader
	buf *bytes.Buffer // the message being read; from payloadPool, nil between messages

	// onPing is called with the payload of each ping; it must copy it.
	onPing func(payload []byte) error
	// rate, when set, is charged for each ping and pong before it is
	// handled: control frames count against the client's message rate, or
	// a flood of pings would be answered without limit. An error ends the
	// read with it. (An interface, not a func: a method value would cost
	// every connection an allocation.)
	rate interface{ admit() error }
	// onFrame is called for every frame that arrives, for the heartbeat.
	onFrame func()
	// drained, when set, is asked after each control frame between
	// messages: true makes next return errNoMessage, so the caller can
	// wait (and park) as between messages instead of blocking inside next.
	drained func() bool

	// maxFrames bounds the frames of one message (Options.
	// MaxMessageFragments); frames counts those of the message being read.
	maxFrames, frames int

	ctl [ws.MaxControlFramePayloadSize]byte
}

// peerClosed is the error a read ends with when the client sent a close
// frame. Code is 0 when the frame had no body.
type peerClosed struct {
	code   ws.StatusCode
	reason string
}

func (e *peerClosed) Error() string {
	return fmt.Sprintf("client closed the connection (code %d %q)", e.code, e.reason)
}

// errNoMessage is what next returns when it handled a control frame
// between messages (a pong, say) and drained reports nothing else to read:
// no message, no error.
var errNoMessage = errors.New("no message: only control frames")

// errRateLimited ends the reader of a client that sent messages faster than
// Options.MessageRate allows, when Options.MessageRateAction is CloseClient.
var errRateLimited = errors.New("message rate limit exceeded")

// tooManyFragments ends the reader of a client that sent a message in more
// frames than Options.MaxMessageFragments allows.
type tooManyFragments struct{ limit int }

func (e *tooManyFragments) Error() string {
	return fmt.Sprintf("message in too many fragments: the limit is %d frames", e.limit)
}

// maxPooledPayload is the largest message buffer that goes back to
// payloadPool; a larger one, grown by one big message, is left to the
// garbage collector.
const maxPooledPayload = 64 << 10

// payloadPool holds the buffers messages are assembled in. A connection
// borrows one per run of messages and gives it back before it waits for
// the next, so an idle connection holds none.
var payloadPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newMessageReader(src io.Reader, maxSize int64, maxFrames int) *messageReader {
	m := &messageReader{}
	m.init(src, maxSize, maxFrames)
	return m
}

// init sets m up to read from src, for a messageReader embedded in another
// struct.
func (m *messageReader) init(src io.Reader, maxSize int64, maxFrames int) {
	m.maxFrames = maxFrames
	m.rd = wsutil.Reader{
		Source:         src,
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		MaxMessageSize: maxSize,
		OnIntermediate: m.control,
		OnContinuation: m.continuation,
	}
}

// continuation counts a continuation frame of the message being read.
// Empty fragments pass MaxMessageSize whatever their number, and each
// costs a frame's parsing: the count is what bounds them.
func (m *messageReader) continuation(ws.Header, io.Reader) error {
	m.frame()
	if m.frames++; m.frames > m.maxFrames {
		return &tooManyFragments{m.maxFrames}
	}
	return nil
}

// release gives the message buffer back to the pool; the last message's
// bytes are invalid after it.
func (m *messageReader) release() {
	if m.buf == nil {
		return
	}
	if m.buf.Cap() <= maxPooledPayload {
		m.buf.Reset()
		payloadPool.Put(m.buf)
	}
	m.buf = nil
}

func (m *messageReader) frame() {
	if m.onFrame != nil {
		m.onFrame()
	}
}

// next returns the next data message. Its bytes are valid until the next
// call. The error is a *peerClosed when the client closed the connection,
// and otherwise says why reading stopped; closeFor turns it into the code to
// close with.
func (m *messageReader) next() (stateroom.Payload, error) {
	if m.buf == nil {
		m.buf = payloadPool.Get().(*bytes.Buffer)
	}
	m.buf.Reset()
	for {
		hdr, err := m.rd.NextFrame()
		if err != nil {
			return stateroom.Payload{}, err
		}
		if hdr.OpCode.IsControl() {
			if err := m.control(hdr, &m.rd); err != nil {
				return stateroom.Payload{}, err
			}
			if m.drained != nil && m.drained() {
				return stateroom.Payload{}, errNoMessage
			}
			continue
		}
		m.frame()
		m.frames = 1
		// ReadFrom grows the buffer as bytes arrive, never on the length
		// the peer declared; wsutil.Reader stops at MaxMessageSize.
		if _, err := m.buf.ReadFrom(&m.rd); err != nil {
			return stateroom.Payload{}, err
		}
		return stateroom.Payload{Data: m.buf.Bytes(), Binary: hdr.OpCode == ws.OpBinary}, nil
	}
}

// control handles one control frame whose payload is read from body.
func (m *messageReader) control(hdr ws.Header, body io.Reader) error {
	m.frame()
	p := m.ctl[:hdr.Length] // CheckHeader has bounded it to 125 bytes
	if _, err := io.ReadFull(body, p); err != nil {
		if err == io.EOF {
			// Never io.EOF: inside a fragmented message, Read would pass
			// it up and bytes.Buffer.ReadFrom would take the truncated
			// message for a whole one.
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if m.rate != nil && (hdr.OpCode == ws.OpPing || hdr.OpCode == ws.OpPong) {
		if err := m.rate.admit(); err != nil {
			return err
		}
	}
	switch hdr.OpCode {
	case ws.OpPing:
		if m.onPing != nil {
			return m.onPing(p)
		}
	case ws.OpClose:
		if len(p) == 1 {
			return ws.ErrProtocolControlPayloadOverflow
		}
		code, reason := ws.ParseCloseFrameData(p)
		if len(p) >= 2 {
			// Not ws.CheckCloseFrameData: it refuses 1012-1014, which
			// this server sends (a client echoing our code is no error),
			// and lets 5000 and up through.
			if !stateroom.CloseCode(code).Sendable() {
				return ws.ErrProtocolStatusCodeUnknown
			}
			if !utf8.ValidString(reason) {
				return ws.ErrProtocolInvalidUTF8
			}
		}
		return &peerClosed{code: code, reason: reason}
	}
	return nil
}

// closeFor says how to end a connection whose reader stopped with err: the
// close code and reason to send, and whether the peer is still there to
// read them (false for a broken or half-closed socket).
func closeFor(err error, o *Options) (code stateroom.CloseCode, reason string, reachable bool) {
	var pc *peerClosed
	var pe ws.ProtocolError
	var tf *tooManyFragments
	switch {
	case errors.As(err, &pc):
		if pc.code == 0 {
			return 0, "", true // answer a bodiless close with a bodiless close
		}
		return stateroom.CloseCode(pc.code), "", true
	case errors.Is(err, wsutil.ErrMessageTooLarge), errors.Is(err, wsutil.ErrFrameTooLarge):
		return stateroom.CloseMessageTooBig, fmt.Sprintf("message too big: the limit is %d bytes (%s)", o.MaxMessageSize, o.name("MaxMessageSize")), true
	case errors.As(err, &tf):
		return stateroom.CloseMessageTooBig, fmt.Sprintf("%v (%s)", tf, o.name("MaxMessageFragments")), true
	case errors.Is(err, errRateLimited):
		return stateroom.ClosePolicyViolation, "message rate limit exceeded", true
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		return stateroom.CloseInvalidPayload, "text message is not valid UTF-8; send bytes as a binary message", true
	case errors.As(err, &pe):
		return stateroom.CloseProtocolError, "protocol error: " + pe.Error(), true
	case errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		return stateroom.CloseProtocolError, "protocol error: " + err.Error(), true
	default:
		return 0, "", false
	}
}

// wireBufSize is the read buffer a connection borrows while bytes flow.
const wireBufSize = 4 << 10

// idleReadSize is how much a connection reads while it waits for a
// message, into an array of its own: enough for a small message whole, so
// a quiet client's message costs one read and no pooled buffer.
const idleReadSize = 128

// wireBufPool holds the read buffers of connections that are receiving.
var wireBufPool = sync.Pool{New: func() any { b := make([]byte, wireBufSize); return &b }}

// wireReader buffers a connection's reads like a bufio.Reader, but holds a
// full-size buffer only while bytes are flowing: a connection waiting for
// its next message reads into idle, its own small array, and borrows a
// buffer from wireBufPool when a read needs more room. That is most of the
// difference between an idle connection costing 4 KiB more or not.
type wireReader struct {
	src    io.Reader
	buf    []byte // unread bytes are buf[r:w]
	r, w   int
	pooled *[]byte // the buffer borrowed from wireBufPool, or nil
	// full says the last read filled its buffer: more bytes are probably
	// waiting in the socket, so the next read should be a big one.
	full bool
	idle [idleReadSize]byte
}

// reset makes w read pending (bytes read past the handshake) before src.
func (w *wireReader) reset(src io.Reader, pending []byte) {
	w.src = src
	w.buf, w.r, w.w = pending, 0, len(pending)
}

// buffered reports whether bytes are waiting to be read from w's buffer.
func (w *wireReader) buffered() bool { return w.r < w.w }

// Read implements io.Reader for the frame parser.
func (w *wireReader) Read(p []byte) (int, error) {
	if w.r == w.w {
		if len(p) >= wireBufSize {
			// A big read (a large payload) goes straight into p.
			w.release()
			n, err := w.src.Read(p)
			w.full = n == len(p)
			return n, err
		}
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.buf[w.r:w.w])
	w.r += n
	return n, nil
}

// fill reads into the pooled buffer, borrowing one if needed. It is only
// called when every buffered byte has been read.
func (w *wireReader) fill() error {
	if w.pooled == nil {
		w.pooled = wireBufPool.Get().(*[]byte)
	}
	return w.readInto(*w.pooled)
}

// wait blocks until bytes arrive, holding no pooled buffer unless the last
// read suggested more bytes are already waiting. It is only called when
// every buffered byte has been read, between messages.
func (w *wireReader) wait() error {
	if w.full {
		return w.fill()
	}
	w.release()
	return w.readInto(w.idle[:])
}

func (w *wireReader) readInto(b []byte) error {
	n, err := w.src.Read(b)
	w.buf, w.r, w.w = b, 0, n
	w.full = n == len(b)
	if n > 0 {
		return nil // an error comes back from the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// release gives the pooled buffer back, if w holds one and has read all of
// it.
func (w *wireReader) release() {
	if w.pooled == nil || w.r < w.w {
		return
	}
	wireBufPool.Put(w.pooled)
	w.pooled = nil
	w.buf, w.r, w.w = nil, 0, 0
}
