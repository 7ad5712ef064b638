package stateroom

import (
	"strconv"
	"time"
)

// Room is what a service sees of the room it runs in. It is valid only during
// the callback it was passed to.
type Room interface {
	// ID returns the room id, as addressed in the URL.
	ID() string
	// Send queues a message for the recipient and returns at once; it never
	// waits for a client's socket. A message for a client that is not
	// connected is dropped. Messages reach each client in the order they
	// were sent. The payload's bytes may be reused once Send returns.
	Send(to Recipient, p Payload)
	// SetTimer sets the room's single timer: the service's Timer callback
	// runs once, d from now. A new call replaces a pending timer. A delay of
	// zero or less fires as soon as the current event is handled. The
	// timer dies with the room.
	SetTimer(d time.Duration)
	// Close closes one client's connection with code and reason (cut to
	// 123 bytes): the client gets the messages sent to it so far, then a
	// close frame with code, and the service gets its Disconnect once the
	// current event is handled. code must be CloseNormal or in 4100-4999
	// (see [CloseCode.ForService]); any other returns an error wrapping
	// [ErrCloseCode] and closes nothing. Closing a client that is not
	// connected does nothing.
	Close(client ClientID, code CloseCode, reason string) error
}

// ClientID identifies a client within a room. Ids are assigned per room from 1
// upward; 0 is never a client.
type ClientID uint32

// String returns the id in decimal.
func (id ClientID) String() string { return strconv.FormatUint(uint64(id), 10) }

// RecipientKind says who a [Recipient] addresses.
type RecipientKind uint8

// The kinds of recipient.
const (
	// ToEveryone addresses every client of the room.
	ToEveryone RecipientKind = iota
	// ToClient addresses one client.
	ToClient
	// ToEveryoneExcept addresses every client of the room but one.
	ToEveryoneExcept
)

// Recipient addresses the clients of a room a message goes to. Build one with
// [Everyone], [To] or [EveryoneExcept]; the zero value is Everyone.
type Recipient struct {
	kind   RecipientKind
	client ClientID
}

// Everyone addresses every client of the room.
var Everyone = Recipient{kind: ToEveryone}

// To addresses one client.
func To(id ClientID) Recipient { return Recipient{kind: ToClient, client: id} }

// EveryoneExcept addresses every client of the room but id.
func EveryoneExcept(id ClientID) Recipient { return Recipient{kind: ToEveryoneExcept, client: id} }

// Kind says who the recipient addresses.
func (r Recipient) Kind() RecipientKind { return r.kind }

// Client is the client a [ToClient] recipient addresses, or the one a
// [ToEveryoneExcept] recipient leaves out; 0 for [Everyone].
func (r Recipient) Client() ClientID { return r.client }

// Includes reports whether a message for r reaches client id.
func (r Recipient) Includes(id ClientID) bool {
	switch r.kind {
	case ToClient:
		return id == r.client
	case ToEveryoneExcept:
		return id != r.client
	default:
		return true
	}
}

// String describes the recipient, for logs.
func (r Recipient) String() string {
	switch r.kind {
	case ToClient:
		return "client " + r.client.String()
	case ToEveryoneExcept:
		return "everyone except " + r.client.String()
	case ToEveryone:
		return "everyone"
	default:
		return "Recipient(" + strconv.Itoa(int(r.kind)) + ")"
	}
}
