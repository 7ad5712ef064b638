package stateroom

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// CloseCode is a WebSocket close code (RFC 6455, section 7.4).
//
// # The table
//
// Codes 1000-2999 are the protocol's; 3000-3999 are registered with IANA
// for libraries; 4000-4999 are for applications: Stateroom uses 4000-4099
// and leaves 4100-4999 to services (see [Room.Close]).
//
// Every code the runtime sends is listed below with what a client should do
// when it gets it: reconnect (with a backoff, the same reconnection token
// and so the same client id) or stop (show the reason; reconnecting would
// be refused or closed again the same way). [CloseCode.Reconnect] answers
// from this table; the browser and Go clients follow it.
//
//	code  name                  sent when                                  client
//	1000  CloseNormal           a service closed the client normally       stop
//	1001  CloseGoingAway        the server is shutting down                reconnect
//	1002  CloseProtocolError    the client sent a bad frame                stop
//	1006  (never sent)          the connection dropped without a close     reconnect
//	1007  CloseInvalidPayload   a text message was not valid UTF-8         stop
//	1008  ClosePolicyViolation  the client broke the message rate limit    stop
//	1009  CloseMessageTooBig    a message exceeded the size limit          stop
//	1011  CloseServiceFault     the room's service failed; room restarted  reconnect
//	1012  CloseServiceRestart   the service was replaced (a deploy)        reconnect
//	1013  CloseTryAgainLater    a connection or room limit was reached     reconnect
//	4000  CloseSlowConsumer     the client did not read fast enough        reconnect
//	4001  CloseHeartbeatTimeout the client was silent too long             reconnect
//	4002  CloseRoomClosed       an operator closed the room                stop
//	4003  CloseReplaced         a newer connection took this client id     stop
//	4100-4999                   the service closed the client              stop
type CloseCode uint16

// The close codes of the table in [CloseCode].
const (
	// CloseNormal: a service closed the client with no more to say.
	CloseNormal CloseCode = 1000
	// CloseGoingAway: the server is shutting down.
	CloseGoingAway CloseCode = 1001
	// CloseProtocolError: the client broke the WebSocket protocol (a bad
	// frame).
	CloseProtocolError CloseCode = 1002
	// CloseAbnormal is never sent: clients report it when the connection
	// dropped without a close frame.
	CloseAbnormal CloseCode = 1006
	// CloseInvalidPayload: a text message was not valid UTF-8.
	CloseInvalidPayload CloseCode = 1007
	// ClosePolicyViolation: the client sent messages faster than the
	// server's message rate allows (when the server closes rather than
	// throttles).
	ClosePolicyViolation CloseCode = 1008
	// CloseMessageTooBig: a message exceeded the server's size limit.
	CloseMessageTooBig CloseCode = 1009
	// CloseServiceFault: the room's service panicked or its WebAssembly
	// instance faulted; the room is gone and a new connection starts a
	// fresh one.
	CloseServiceFault CloseCode = 1011
	// CloseServiceRestart: the service was replaced (a deploy or a
	// development rebuild); reconnect to get the new one.
	CloseServiceRestart CloseCode = 1012
	// CloseTryAgainLater: the server is at a connection or room limit.
	CloseTryAgainLater CloseCode = 1013
	// CloseSlowConsumer: the client did not read its messages fast enough;
	// its outbound queue filled up.
	CloseSlowConsumer CloseCode = 4000
	// CloseHeartbeatTimeout: the client was silent past the heartbeat
	// timeout.
	CloseHeartbeatTimeout CloseCode = 4001
	// CloseRoomClosed: the room was closed by an operator.
	CloseRoomClosed CloseCode = 4002
	// CloseReplaced: another connection joined with the same reconnection
	// token and took over this client id.
	CloseReplaced CloseCode = 4003

	// FirstServiceCloseCode and LastServiceCloseCode bound the codes a
	// service may close a client with, besides CloseNormal.
	FirstServiceCloseCode CloseCode = 4100
	LastServiceCloseCode  CloseCode = 4999
)

// Reconnect reports whether a client closed with c should reconnect, as the
// table in [CloseCode] says. Codes outside the table (other protocol codes,
// 3000-3999, 4004-4099) count as stop: a client cannot know they are
// temporary.
func (c CloseCode) Reconnect() bool {
	switch c {
	case CloseGoingAway, CloseAbnormal, CloseServiceFault, CloseServiceRestart,
		CloseTryAgainLater, CloseSlowConsumer, CloseHeartbeatTimeout:
		return true
	}
	return false
}

// String returns the code's name from the table, or its number.
func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal"
	case CloseGoingAway:
		return "going away"
	case CloseProtocolError:
		return "protocol error"
	case CloseAbnormal:
		return "abnormal closure"
	case CloseInvalidPayload:
		return "invalid payload"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseMessageTooBig:
		return "message too big"
	case CloseServiceFault:
		return "service fault"
	case CloseServiceRestart:
		return "service restart"
	case CloseTryAgainLater:
		return "try again later"
	case CloseSlowConsumer:
		return "slow consumer"
	case CloseHeartbeatTimeout:
		return "heartbeat timeout"
	case CloseRoomClosed:
		return "room closed"
	case CloseReplaced:
		return "replaced"
	}
	if c.ForService() {
		return "service code " + strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c))
}

// ForService reports whether a service may close a client with c
// ([Room.Close]): CloseNormal or 4100-4999.
func (c CloseCode) ForService() bool {
	return c == CloseNormal || (c >= FirstServiceCloseCode && c <= LastServiceCloseCode)
}

// Sendable reports whether a server may send c in a close frame (RFC 6455,
// section 7.4: 1004-1006 and 1015 are never sent, 1016-2999 are
// unassigned, 5000 and up do not exist).
func (c CloseCode) Sendable() bool {
	switch {
	case c >= 3000 && c <= 4999:
		return true
	case c >= 1000 && c <= 1014:
		return c != 1004 && c != 1005 && c != 1006
	default:
		return false
	}
}

// MaxCloseReason is the longest close reason, in bytes, a close frame
// carries (RFC 6455, section 5.5: a control frame's payload is at most 125
// bytes, two of them the code).
const MaxCloseReason = 123

// TruncateReason makes s a close reason, as the runtime does with every
// one: invalid UTF-8 replaced with U+FFFD (a client must fail a connection
// whose close reason is not UTF-8, RFC 6455 section 8.1), then cut to at
// most [MaxCloseReason] bytes on a rune boundary.
func TruncateReason(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxCloseReason {
		return s
	}
	s = s[:MaxCloseReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
