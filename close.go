package stateroom

// WebSocket close codes the runtime sends, in one table. Codes 1000-2999 are
// the protocol's (RFC 6455, section 7.4.1); 4000-4999 are for applications:
// Stateroom uses 4000-4099 and leaves 4100-4999 to services and their users.
const (
	// CloseNormal: the room ended normally.
	CloseNormal = 1000
	// CloseGoingAway: the server is shutting down.
	CloseGoingAway = 1001
	// CloseProtocolError: the client broke the WebSocket protocol (a bad
	// frame).
	CloseProtocolError = 1002
	// CloseInvalidPayload: a text message was not valid UTF-8.
	CloseInvalidPayload = 1007
	// ClosePolicyViolation: the client broke a server policy (message rate,
	// heartbeat timeout).
	ClosePolicyViolation = 1008
	// CloseMessageTooBig: a message exceeded the server's size limit.
	CloseMessageTooBig = 1009
	// CloseServiceFault: the room's service panicked or its WebAssembly
	// instance faulted; the room is gone and a new connection starts a
	// fresh one.
	CloseServiceFault = 1011
	// CloseServiceRestart: the service was replaced (a development rebuild);
	// reconnect to get the new one.
	CloseServiceRestart = 1012
	// CloseTryAgainLater: the server is at a connection or room limit.
	CloseTryAgainLater = 1013
	// CloseSlowConsumer: the client did not read its messages fast enough;
	// its outbound queue filled up.
	CloseSlowConsumer = 4000
	// CloseHeartbeatTimeout: the client was silent past the heartbeat
	// timeout.
	CloseHeartbeatTimeout = 4001
	// CloseRoomClosed: the room was closed by an operator.
	CloseRoomClosed = 4002
	// CloseReplaced: another connection joined with the same reconnection
	// token and took over this client id.
	CloseReplaced = 4003
)
