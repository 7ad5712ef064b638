package stateroom

import "errors"

// ErrRoomRefused is wrapped by a [Factory] error to refuse a room on purpose
// (an unknown game id, say): the client gets 403 Forbidden instead of 500.
var ErrRoomRefused = errors.New("stateroom: room refused")

// Fault is a panic value that ends a room with a reason for its clients. The
// runtime closes every client of the room with [CloseServiceFault] and sends
// Reason (at most 123 bytes) as the close reason; Err goes to the log. A
// service may panic with any other value too: the clients then get the
// reason "service fault".
type Fault struct {
	// Reason is the short close reason the clients see.
	Reason string
	// Err is the cause, for the log.
	Err error
}

// Error returns the reason and the cause.
func (f *Fault) Error() string {
	if f.Err == nil {
		return f.Reason
	}
	return f.Reason + ": " + f.Err.Error()
}

// Unwrap returns the cause.
func (f *Fault) Unwrap() error { return f.Err }
