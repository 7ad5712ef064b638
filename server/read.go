package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"

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
	buf bytes.Buffer

	// onPing is called with the payload of each ping; it must copy it.
	onPing func(payload []byte) error
	// onFrame is called for every frame that arrives, for the heartbeat.
	onFrame func()

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

// errRateLimited ends the reader of a client that sent messages faster than
// Options.MessageRate allows.
var errRateLimited = errors.New("message rate limit exceeded")

// maxIdleBuffer is the largest read buffer a connection keeps between
// messages; a larger one, grown by one big message, is dropped so idle
// connections stay small.
const maxIdleBuffer = 64 << 10

func newMessageReader(src io.Reader, maxSize int64) *messageReader {
	m := &messageReader{}
	m.rd = wsutil.Reader{
		Source:         src,
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		MaxMessageSize: maxSize,
		OnIntermediate: m.control,
		OnContinuation: func(ws.Header, io.Reader) error { m.frame(); return nil },
	}
	return m
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
	if m.buf.Cap() > maxIdleBuffer {
		m.buf = bytes.Buffer{}
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
			continue
		}
		m.frame()
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
			if err := ws.CheckCloseFrameData(code, reason); err != nil {
				return err
			}
			if !validCloseCode(int(code)) { // CheckCloseFrameData lets 5000 and up through
				return ws.ErrProtocolStatusCodeUnknown
			}
		}
		return &peerClosed{code: code, reason: reason}
	}
	return nil
}

// closeFor says how to end a connection whose reader stopped with err: the
// close code and reason to send, and whether the peer is still there to
// read them (false for a broken or half-closed socket).
func closeFor(err error, maxSize int64) (code int, reason string, reachable bool) {
	var pc *peerClosed
	var pe ws.ProtocolError
	switch {
	case errors.As(err, &pc):
		if pc.code == 0 {
			return 0, "", true // answer a bodiless close with a bodiless close
		}
		return int(pc.code), "", true
	case errors.Is(err, wsutil.ErrMessageTooLarge), errors.Is(err, wsutil.ErrFrameTooLarge):
		return stateroom.CloseMessageTooBig, fmt.Sprintf("message too big: the limit is %d bytes", maxSize), true
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
