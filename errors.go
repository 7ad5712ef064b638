package stateroom

import (
	"errors"
	"strconv"
)

// ErrRoomRefused is wrapped by a [Factory] error to refuse a room on purpose
// (an unknown game id, say): the client gets 403 Forbidden instead of 500.
var ErrRoomRefused = errors.New("stateroom: room refused")

// ErrCloseCode is wrapped by the error [Room.Close] returns for a code a
// service may not close a client with.
var ErrCloseCode = errors.New("stateroom: a service closes a client with CloseNormal (1000) or a code in 4100-4999")

// CheckServiceClose returns an error wrapping [ErrCloseCode] unless a
// service may close a client with code; the runtimes of [Room] call it.
func CheckServiceClose(code CloseCode) error {
	if code.ForService() {
		return nil
	}
	return closeCodeError{code}
}

// closeCodeError is CheckServiceClose's error. It is written without fmt,
// which this package must not import: every Go guest links this package,
// and fmt is a fifth of a guest module's size (docs/PERFORMANCE.md, issue
// 14).
type closeCodeError struct{ code CloseCode }

// Error names the code, as fmt.Errorf("%w; got %d (%s): ...") did.
func (e closeCodeError) Error() string {
	return ErrCloseCode.Error() + "; got " + strconv.Itoa(int(uint16(e.code))) + " (" + e.code.String() + "): codes below 4100 belong to the protocol and the runtime"
}

// Unwrap returns ErrCloseCode, for errors.Is.
func (e closeCodeError) Unwrap() error { return ErrCloseCode }

// ErrIncompatibleSnapshot is wrapped by a [Snapshotter]'s Restore error to
// say the snapshot is sound but not for this build of the service (a
// WebAssembly module's raw memory taken by another build, say): the room
// starts fresh and the old snapshot is overwritten by the next save, not set
// aside as a corrupt one would be.
var ErrIncompatibleSnapshot = errors.New("stateroom: snapshot from an incompatible build of the service")

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
