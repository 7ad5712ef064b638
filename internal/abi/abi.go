// Package abi is the wire codec of the Stateroom WebAssembly ABI (version 1,
// protocol 0): the bincode 1.x encoding of the messages a host hands a guest
// (MessageToProcess, here [Event]) and a guest hands its host
// (MessageFromProcess, here [Command]), byte-exact with upstream Stateroom.
//
// Encoding: enum tags are u32 little-endian in declaration order, client ids
// and timer delays u32 LE, close codes u16 LE, text and bytes a u64 LE
// length then the bytes.
//
// MessageFromProcess has one variant upstream lacks, Close ([CommandClose]),
// an optional extension: a guest that never sends it speaks upstream's ABI
// exactly (see ABI.md). The snapshot extension adds two optional guest
// exports, whose names and answers are the constants [ExportSnapshot],
// [ExportRestore] and the Snapshot* and Restore* values; the members
// extension one more, [ExportMember].
//
// Decoding is strict about structure: truncated input, trailing bytes,
// unknown tags and lengths past the end of the input are errors. Decoders
// never allocate from a length they read: decoded payloads alias the input,
// and the one copy, a Close's reason, is of bytes already in it.
//
// Text is checked for UTF-8 in one direction only. [DecodeEvent] rejects
// invalid UTF-8 in a text message, which protects the guest SDK: it hands the
// text to a service that, natively, only ever sees text the server
// validated. [DecodeCommand] does not check text: what a guest sends goes to
// the room runtime, which drops an invalid text message with a warning and
// counts it, exactly as it does for a native service, so a guest's bad text
// costs one message, not its room.
//
// The host (package wasmhost) and the guest SDK (package guest) share this
// package so that both sides speak one encoding.
package abi

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/stateroom-go/stateroom"
)

// Version and Protocol are the values a module's STATEROOM_API_VERSION and
// STATEROOM_API_PROTOCOL globals point at.
const (
	Version  = 1
	Protocol = 0
)

// EventKind is the tag of a MessageToProcess.
type EventKind uint32

// The events a host delivers, in the ABI's declaration order.
const (
	EventInit EventKind = iota
	EventConnect
	EventDisconnect
	EventMessage
	EventTimer
)

// String returns the event's name as the ABI declares it, e.g. "Connect".
func (k EventKind) String() string {
	switch k {
	case EventInit:
		return "Init"
	case EventConnect:
		return "Connect"
	case EventDisconnect:
		return "Disconnect"
	case EventMessage:
		return "Message"
	case EventTimer:
		return "Timer"
	}
	return "EventKind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// Event is one MessageToProcess. Client is set for Connect, Disconnect and
// Message; Payload for Message.
type Event struct {
	Kind    EventKind
	Client  stateroom.ClientID
	Payload stateroom.Payload
}

// CommandKind is the tag of a MessageFromProcess.
type CommandKind uint32

// The commands a guest sends, in the ABI's declaration order.
const (
	CommandMessage CommandKind = iota
	CommandSetTimer
	// CommandClose is our extension, the variant after upstream's last:
	// close one client's connection (stateroom.Room.Close). Upstream's
	// host does not know it; a guest that never sends it runs there
	// unchanged.
	CommandClose
)

// String returns the command's name as the ABI declares it, e.g.
// "SetTimer".
func (k CommandKind) String() string {
	switch k {
	case CommandMessage:
		return "Message"
	case CommandSetTimer:
		return "SetTimer"
	case CommandClose:
		return "Close"
	}
	return "CommandKind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// Command is one MessageFromProcess: a Message of Payload for To, a
// SetTimer of DelayMS milliseconds, or a Close of Client with Code and
// Reason. Fields of the other kinds are ignored by [AppendCommand] and zero
// from [DecodeCommand].
type Command struct {
	Kind    CommandKind
	To      stateroom.Recipient
	Payload stateroom.Payload
	DelayMS uint32

	// Client, Code and Reason are a Close's. Code travels as bincode's
	// u16, the width of a WebSocket close code, so any u16 decodes: the
	// host, not the codec, decides which codes a service may use.
	// Reason is the one decoded field that does not alias the input: it
	// is a copy, as a string must be.
	Client stateroom.ClientID
	Code   stateroom.CloseCode
	Reason string
}

// Tags of MessageRecipient and MessagePayload.
const (
	recipientBroadcast      = 0
	recipientClient         = 1
	recipientEveryoneExcept = 2

	payloadBytes = 0
	payloadText  = 1
)

// Errors of the decoders, wrapped with the position and the value found.
var (
	ErrTruncated = errors.New("abi: truncated message")
	ErrTrailing  = errors.New("abi: trailing bytes after message")
	ErrTag       = errors.New("abi: unknown enum tag")
	// ErrUTF8 is returned by DecodeEvent only (see the package
	// documentation).
	ErrUTF8 = errors.New("abi: text is not valid UTF-8")
)

// AppendEvent appends the encoding of ev to dst.
func AppendEvent(dst []byte, ev Event) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(ev.Kind))
	switch ev.Kind {
	case EventConnect, EventDisconnect:
		dst = binary.LittleEndian.AppendUint32(dst, uint32(ev.Client))
	case EventMessage:
		dst = binary.LittleEndian.AppendUint32(dst, uint32(ev.Client))
		dst = appendPayload(dst, ev.Payload)
	}
	return dst
}

// EventSize returns len(AppendEvent(nil, ev)) without encoding.
func EventSize(ev Event) int {
	switch ev.Kind {
	case EventConnect, EventDisconnect:
		return 8
	case EventMessage:
		return 8 + 4 + 8 + len(ev.Payload.Data)
	}
	return 4
}

// AppendCommand appends the encoding of c to dst.
func AppendCommand(dst []byte, c Command) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(c.Kind))
	switch c.Kind {
	case CommandMessage:
		switch c.To.Kind() {
		case stateroom.ToClient:
			dst = binary.LittleEndian.AppendUint32(dst, recipientClient)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(c.To.Client()))
		case stateroom.ToEveryoneExcept:
			dst = binary.LittleEndian.AppendUint32(dst, recipientEveryoneExcept)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(c.To.Client()))
		default:
			dst = binary.LittleEndian.AppendUint32(dst, recipientBroadcast)
		}
		dst = appendPayload(dst, c.Payload)
	case CommandSetTimer:
		dst = binary.LittleEndian.AppendUint32(dst, c.DelayMS)
	case CommandClose:
		dst = binary.LittleEndian.AppendUint32(dst, uint32(c.Client))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(c.Code))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(len(c.Reason)))
		dst = append(dst, c.Reason...)
	}
	return dst
}

func appendPayload(dst []byte, p stateroom.Payload) []byte {
	tag := uint32(payloadText)
	if p.Binary {
		tag = payloadBytes
	}
	dst = binary.LittleEndian.AppendUint32(dst, tag)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(p.Data)))
	return append(dst, p.Data...)
}

// DecodeEvent decodes one MessageToProcess that fills b exactly. The decoded
// payload aliases b.
func DecodeEvent(b []byte) (Event, error) {
	d := decoder{b: b, strictText: true}
	var ev Event
	ev.Kind = EventKind(d.u32("event tag"))
	switch ev.Kind {
	case EventInit, EventTimer:
	case EventConnect, EventDisconnect:
		ev.Client = stateroom.ClientID(d.u32("client id"))
	case EventMessage:
		ev.Client = stateroom.ClientID(d.u32("sender"))
		ev.Payload = d.payload()
	default:
		d.badTag("MessageToProcess", uint32(ev.Kind))
	}
	return ev, d.finish("MessageToProcess")
}

// DecodeCommand decodes one MessageFromProcess that fills b exactly. The
// decoded payload aliases b. Text is not checked for UTF-8 (see the package
// documentation): a Message's text payload and a Close's reason come out
// as the guest wrote them.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{b: b}
	var c Command
	c.Kind = CommandKind(d.u32("command tag"))
	switch c.Kind {
	case CommandMessage:
		switch tag := d.u32("recipient tag"); tag {
		case recipientBroadcast:
			c.To = stateroom.Everyone
		case recipientClient:
			c.To = stateroom.To(stateroom.ClientID(d.u32("recipient client")))
		case recipientEveryoneExcept:
			c.To = stateroom.EveryoneExcept(stateroom.ClientID(d.u32("recipient client")))
		default:
			d.badTag("MessageRecipient", tag)
		}
		c.Payload = d.payload()
	case CommandSetTimer:
		c.DelayMS = d.u32("ms_delay")
	case CommandClose:
		c.Client = stateroom.ClientID(d.u32("close client"))
		c.Code = stateroom.CloseCode(d.u16("close code"))
		c.Reason = string(d.bytes("close reason"))
	default:
		d.badTag("MessageFromProcess", uint32(c.Kind))
	}
	return c, d.finish("MessageFromProcess")
}

// decoder reads bincode fields from b; the first error sticks and later reads
// return zero values, so decode functions read straight through.
type decoder struct {
	b   []byte
	off int
	err error
	// strictText rejects a text payload that is not valid UTF-8 (events
	// only; see the package documentation).
	strictText bool
}

func (d *decoder) u16(field string) uint16 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 2 {
		d.err = decodeError(ErrTruncated, field+" needs 2 bytes at offset "+itoa(d.off)+", "+itoa(len(d.b)-d.off)+" left")
		return 0
	}
	v := binary.LittleEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32(field string) uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 4 {
		d.err = decodeError(ErrTruncated, field+" needs 4 bytes at offset "+itoa(d.off)+", "+itoa(len(d.b)-d.off)+" left")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) payload() stateroom.Payload {
	tag := d.u32("payload tag")
	if d.err != nil {
		return stateroom.Payload{}
	}
	if tag != payloadBytes && tag != payloadText {
		d.badTag("MessagePayload", tag)
		return stateroom.Payload{}
	}
	data := d.bytes("payload")
	if d.err != nil {
		return stateroom.Payload{}
	}
	if tag == payloadText {
		if d.strictText && !utf8.Valid(data) {
			d.err = decodeError(ErrUTF8, itoa(len(data))+" bytes at offset "+itoa(d.off-len(data)))
			return stateroom.Payload{}
		}
		return stateroom.Payload{Data: data}
	}
	return stateroom.Payload{Data: data, Binary: true}
}

// bytes reads bincode's bytes or string: a u64 length, then that many
// bytes, which alias the input.
func (d *decoder) bytes(field string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < 8 {
		d.err = decodeError(ErrTruncated, field+" length needs 8 bytes at offset "+itoa(d.off)+", "+itoa(len(d.b)-d.off)+" left")
		return nil
	}
	n := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	if left := uint64(len(d.b) - d.off); n > left {
		d.err = decodeError(ErrTruncated, field+" of "+strconv.FormatUint(n, 10)+" bytes at offset "+itoa(d.off)+", "+strconv.FormatUint(left, 10)+" left")
		return nil
	}
	data := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return data
}

func (d *decoder) badTag(enum string, tag uint32) {
	if d.err == nil {
		d.err = decodeError(ErrTag, enum+" tag "+strconv.FormatUint(uint64(tag), 10)+" at offset "+itoa(d.off-4))
	}
}

func (d *decoder) finish(what string) error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return decodeError(ErrTrailing, what+" ends at offset "+itoa(d.off)+", input has "+itoa(len(d.b))+" bytes")
	}
	return nil
}

// DecodeError is the error of a decoder: one of the sentinel errors above
// and where in the input it happened. It avoids fmt, which would add a
// fifth to the size of every Go guest module.
type DecodeError struct {
	Err    error  // ErrTruncated, ErrTrailing, ErrTag or ErrUTF8 (events only)
	Detail string // what was expected and found, with the offset
}

func decodeError(err error, detail string) error { return &DecodeError{Err: err, Detail: detail} }

// Error returns the sentinel's text and the detail.
func (e *DecodeError) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns the sentinel, for errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

func itoa(n int) string { return strconv.Itoa(n) }

// RecipientToI32 is upstream's encode_i32: 0 is everyone, +id one client,
// -id everyone except id. It reports false for an id above 2^31-1, which the
// i32 form cannot carry.
func RecipientToI32(r stateroom.Recipient) (int32, bool) {
	if r.Kind() == stateroom.ToEveryone {
		return 0, true
	}
	id := r.Client()
	if id == 0 || id > 1<<31-1 {
		return 0, false
	}
	if r.Kind() == stateroom.ToClient {
		return int32(id), true
	}
	return -int32(id), true
}

// RecipientFromI32 is the inverse of [RecipientToI32]. It reports false for
// math.MinInt32, which has no positive counterpart.
func RecipientFromI32(v int32) (stateroom.Recipient, bool) {
	switch {
	case v == 0:
		return stateroom.Everyone, true
	case v > 0:
		return stateroom.To(stateroom.ClientID(v)), true
	case v == -1<<31:
		return stateroom.Recipient{}, false
	default:
		return stateroom.EveryoneExcept(stateroom.ClientID(-v)), true
	}
}

// The snapshot extension (ABI.md, "Extension: snapshots"): two optional
// guest exports through which a guest hands its host its state as bytes
// and takes it back, so that its room outlives the instance. A module that
// exports neither is snapshotted by the host as raw memory instead; one
// that exports only one of them does not load.
const (
	// ExportSnapshot is `stateroom_snapshot() -> i32`: SnapshotNone,
	// SnapshotFailed, or the address of a SnapshotRef.
	ExportSnapshot = "stateroom_snapshot"
	// ExportRestore is `stateroom_restore(ptr i32, len i32) -> i32`: the
	// host wrote a snapshot at ptr through stateroom_malloc; the guest
	// answers RestoreOK, RestoreRefused or RestoreIncompatible.
	ExportRestore = "stateroom_restore"
)

// Results of stateroom_snapshot other than the address of a SnapshotRef.
// Neither can be such an address: 0 is the null pointer, and 8 bytes do not
// fit at 0xFFFFFFFF in a 32-bit memory.
const (
	// SnapshotNone: the guest does not snapshot itself (a Go service that
	// is not a stateroom.Snapshotter); the host takes its raw memory.
	SnapshotNone uint32 = 0
	// SnapshotFailed (-1 as an i32): the guest's snapshot failed, with a
	// message on stderr; this save is skipped and the room goes on.
	SnapshotFailed uint32 = 0xFFFFFFFF
)

// SnapshotRefSize is the size of the pair stateroom_snapshot points at:
// the snapshot's address and length, little-endian u32s. The pair and the
// bytes stay valid until the host's next call into the guest.
const SnapshotRefSize = 8

// Results of stateroom_restore. Any other value is taken as
// RestoreRefused.
const (
	// RestoreOK: the guest took the snapshot.
	RestoreOK uint32 = 0
	// RestoreRefused: the bytes are not a state the guest can take
	// (damaged, or its Restore failed); the host's Restore fails and the
	// runtime sets the record aside for an operator.
	RestoreRefused uint32 = 1
	// RestoreIncompatible: the bytes are sound but from a build this one
	// cannot read (a Go Restore error wrapping
	// stateroom.ErrIncompatibleSnapshot); the room starts fresh.
	RestoreIncompatible uint32 = 2
)

// ExportMember is the members extension (ABI.md, "Extension: members"): an
// optional guest export `stateroom_member(client i32)`, which the host
// calls once for each client already connected to the room, just before
// the Init of an instance that starts with clients (a hibernated room
// waking: its clients stayed connected while its instance was dropped).
// It is stateroom.InitEvent.Clients for a WebAssembly service. A module
// without it gets Init alone, as upstream's host gives it.
const ExportMember = "stateroom_member"
