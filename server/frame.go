package server

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// maxCloseReason is the longest close reason a close frame can carry: a
// control frame holds 125 bytes, 2 of them the code.
const maxCloseReason = ws.MaxControlFramePayloadSize - 2

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
func closeFrame(code int, reason string) []byte {
	if code == 0 {
		return serverFrame(ws.OpClose, nil)
	}
	reason = truncateReason(reason)
	body := make([]byte, 2+len(reason))
	ws.PutCloseFrameBody(body, ws.StatusCode(code), reason)
	return serverFrame(ws.OpClose, body)
}

// truncateReason cuts s to at most maxCloseReason bytes on a rune boundary.
func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	s = s[:maxCloseReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// validCloseCode reports whether a server may send code in a close frame
// (RFC 6455, section 7.4: 1004-1006 and 1015 are never sent, 1016-2999 are
// unassigned, 5000 and up do not exist).
func validCloseCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != 1005 && code != 1006
	default:
		return false
	}
}

// pingFrame is the heartbeat ping, built once and shared by every client.
var pingFrame = serverFrame(ws.OpPing, nil)
