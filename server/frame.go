package server

import (
	"encoding/binary"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// serverFrame returns one complete, unmasked, final frame of kind op holding
// a copy of payload, in a single allocation. The result is immutable once
// built, so one broadcast frame is shared by every recipient's queue.
//
// We write the header here instead of calling ws.CompileFrame because that
// allocates a bytes.Buffer and grows it; server frames need only the
// length-dependent 2, 4 or 10 header bytes (RFC 6455, section 5.2), and the
// round trip through ws.ReadHeader is fuzzed in frame_test.go.
func serverFrame(op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	var hl int
	switch {
	case n < 126:
		hl = 2
	case n <= 0xffff:
		hl = 4
	default:
		hl = 10
	}
	b := make([]byte, hl+n)
	b[0] = 0x80 | byte(op) // FIN, no RSV bits
	switch hl {
	case 2:
		b[1] = byte(n)
	case 4:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	copy(b[hl:], payload)
	return b
}

// closeFrame returns a close frame with code and reason, the reason cut to
// what a control frame can hold without splitting a UTF-8 sequence. A code of
// 0 gives a close frame with no body.
func closeFrame(code stateroom.CloseCode, reason string) []byte {
	if code == 0 {
		return serverFrame(ws.OpClose, nil)
	}
	reason = stateroom.TruncateReason(reason)
	body := make([]byte, 2+len(reason))
	ws.PutCloseFrameBody(body, ws.StatusCode(code), reason)
	return serverFrame(ws.OpClose, body)
}

// pingFrame is the heartbeat ping, built once and shared by every client.
var pingFrame = serverFrame(ws.OpPing, nil)

// encodePayload is the frame a service's message goes out as: built once
// per Send and shared by every recipient (rooms.Config.Encode).
func encodePayload(p stateroom.Payload) []byte {
	if p.Binary {
		return serverFrame(ws.OpBinary, p.Data)
	}
	return serverFrame(ws.OpText, p.Data)
}
