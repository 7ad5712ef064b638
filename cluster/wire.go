package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/stateroom-go/stateroom"
)

// The messages nodes exchange on their subjects (stateroom.node.NAME). A
// link is one client's connection held by a gateway node to a room owned by
// another node; links are numbered by their gateway. Each message is an op
// byte followed by its fields: unsigned varints, and byte strings as a
// varint length then the bytes.
//
// Gateway to owner:
//
//	opJoin     gateway, incarnation, link, room, token, identity kind, identity, charge  (request)
//	opConnect  gateway, link                                                      (request)
//	opRelease  gateway, link
//	opMessage  gateway, link, seq, binary, payload
//	opLeave    gateway, link
//	opKick     gateway, link, code, reason
//
// Owner to gateway:
//
//	opFrames   one or more groups to the message's end, each:
//	           count, count x (link, seq), frame   (one frame for several links)
//	opClose    link, seq, code, discard, reason
//
// Replies to requests: a status byte (replyOK or replyError), then for
// opJoin nothing, for opConnect the client id; an error carries a kind and
// a message.
const (
	opJoin byte = iota + 1
	opConnect
	opRelease
	opMessage
	opLeave
	opKick
	opFrames
	opClose
)

const (
	replyOK byte = iota + 1
	replyError
)

// Kinds of identity a join carries across nodes: none, a string (kept as
// a string), or any other value as its JSON (a json.RawMessage on the owner).
const (
	identityNone byte = iota
	identityString
	identityJSON
)

// Kinds of a join's error, so the gateway returns the same errors as a
// local join would.
const (
	errKindOther byte = iota + 1
	errKindShuttingDown
	errKindTooManyRooms
	errKindRoomFull
	errKindRefused
	errKindNotOwner    // the owner lost the room meanwhile: look it up again
	errKindUnavailable // the owner cannot serve it now (fenced, no quorum)
	errKindMustCharge  // the join would create the room: charge the client first
)

// maxFrameLinks bounds the links of one frame group of an opFrames
// message.
const maxFrameLinks = 4096

// errMalformed is the error of every decoder given bytes no node wrote.
var errMalformed = errors.New("cluster: malformed message from another node")

// message is a decoded message between nodes; which fields are set depends
// on op.
type message struct {
	op          byte
	gateway     string
	incarnation string
	link        uint64
	seq         uint64
	room        string
	token       string
	idKind      byte
	identity    []byte
	charge      bool // opJoin: the owner must not create the room (errKindMustCharge)
	binary      bool
	payload     []byte // opMessage's payload
	code        stateroom.CloseCode
	reason      string
	discard     bool
	frames      []delivery // opFrames, in the order sent
}

// delivery is one frame for one link, with its number on the link.
type delivery struct {
	link, seq uint64
	frame     []byte
}

// encoder appends fields.
type encoder []byte

func (e encoder) uint(v uint64) encoder  { return binary.AppendUvarint(e, v) }
func (e encoder) bytes(b []byte) encoder { return append(e.uint(uint64(len(b))), b...) }
func (e encoder) str(s string) encoder   { return append(e.uint(uint64(len(s))), s...) }
func (e encoder) bool(b bool) encoder {
	if b {
		return append(e, 1)
	}
	return append(e, 0)
}

func encodeMessage(m *message) []byte {
	e := encoder{m.op}
	switch m.op {
	case opJoin:
		e = e.str(m.gateway).str(m.incarnation).uint(m.link).str(m.room).str(m.token)
		e = append(e, m.idKind).bytes(m.identity).bool(m.charge)
	case opConnect, opRelease, opLeave:
		e = e.str(m.gateway).uint(m.link)
	case opMessage:
		e = e.str(m.gateway).uint(m.link).uint(m.seq).bool(m.binary).bytes(m.payload)
	case opKick:
		e = e.str(m.gateway).uint(m.link).uint(uint64(m.code)).str(m.reason)
	case opFrames:
		e = e.frames(m.frames)
	case opClose:
		e = e.uint(m.link).uint(m.seq).uint(uint64(m.code)).bool(m.discard).str(m.reason)
	}
	return e
}

// frames appends ds as opFrames groups: a run of deliveries of the same
// frame (the same memory: a room encodes a broadcast once) is one group, so
// a broadcast crosses the network once per gateway, not once per client.
func (e encoder) frames(ds []delivery) encoder {
	for i := 0; i < len(ds); {
		j := i + 1
		for j < len(ds) && j-i < maxFrameLinks && sameBytes(ds[j].frame, ds[i].frame) {
			j++
		}
		e = e.uint(uint64(j - i))
		for _, d := range ds[i:j] {
			e = e.uint(d.link).uint(d.seq)
		}
		e = e.bytes(ds[i].frame)
		i = j
	}
	return e
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// decoder reads fields; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errMalformed
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errMalformed
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.err = errMalformed
	return false
}

func (d *decoder) code() stateroom.CloseCode {
	v := d.uint()
	if v > 4999 {
		d.err = errMalformed
	}
	return stateroom.CloseCode(v)
}

// decodeMessage decodes b, which may come from any node; the message's
// byte fields alias b.
func decodeMessage(b []byte) (*message, error) {
	d := &decoder{b: b}
	m := &message{op: d.byte()}
	switch m.op {
	case opJoin:
		m.gateway, m.incarnation, m.link, m.room, m.token = d.str(), d.str(), d.uint(), d.str(), d.str()
		m.idKind, m.identity, m.charge = d.byte(), d.bytes(), d.bool()
		if m.idKind > identityJSON {
			d.err = errMalformed
		}
	case opConnect, opRelease, opLeave:
		m.gateway, m.link = d.str(), d.uint()
	case opMessage:
		m.gateway, m.link, m.seq, m.binary, m.payload = d.str(), d.uint(), d.uint(), d.bool(), d.bytes()
	case opKick:
		m.gateway, m.link, m.code, m.reason = d.str(), d.uint(), d.code(), d.str()
	case opFrames:
		if len(d.b) == 0 {
			return nil, errMalformed
		}
		for len(d.b) > 0 && d.err == nil {
			n := d.uint()
			if n == 0 || n > maxFrameLinks {
				return nil, errMalformed
			}
			first := len(m.frames)
			for range n { // grows with the bytes read, not with n
				m.frames = append(m.frames, delivery{link: d.uint(), seq: d.uint()})
				if d.err != nil {
					break
				}
			}
			frame := d.bytes()
			for i := first; i < len(m.frames); i++ {
				m.frames[i].frame = frame
			}
		}
	case opClose:
		m.link, m.seq, m.code, m.discard, m.reason = d.uint(), d.uint(), d.code(), d.bool(), d.str()
	default:
		return nil, errMalformed
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the fields", errMalformed, len(d.b))
	}
	if m.op == opMessage && !m.binary && !utf8.Valid(m.payload) {
		return nil, fmt.Errorf("%w: text message is not UTF-8", errMalformed)
	}
	return m, nil
}

// reply encodes a request's answer.
func replyOf(status byte, fields ...uint64) []byte {
	e := encoder{status}
	for _, f := range fields {
		e = e.uint(f)
	}
	return e
}

func replyErr(kind byte, msg string) []byte {
	return encoder{replyError, kind}.str(msg)
}

// decodeReply returns a reply's fields (n of them when OK) or its error.
func decodeReply(b []byte, n int) ([]uint64, byte, string, error) {
	d := &decoder{b: b}
	switch d.byte() {
	case replyOK:
		out := make([]uint64, n)
		for i := range out {
			out[i] = d.uint()
		}
		if d.err != nil || len(d.b) != 0 {
			return nil, 0, "", errMalformed
		}
		return out, 0, "", nil
	case replyError:
		kind, msg := d.byte(), d.str()
		if d.err != nil || len(d.b) != 0 || kind < errKindOther || kind > errKindMustCharge {
			return nil, 0, "", errMalformed
		}
		return nil, kind, msg, nil
	}
	return nil, 0, "", errMalformed
}
