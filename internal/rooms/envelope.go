package rooms

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// envelope is what the runtime stores for a room: the service's snapshot
// and what the room itself must carry across a restart (its pending timer).
// Its encoding is versioned and checksummed, so a truncated or corrupt
// record is recognised as such instead of reaching a service's Restore.
//
//	"SRoo"  magic
//	u8      format version (1)
//	uvarint len, bytes   the instance's kind ("" for a native Snapshotter;
//	                     a WebAssembly host says whose bytes these are)
//	varint  timer deadline, unix milliseconds; 0 for none
//	uvarint len, bytes   the snapshot
//	u32     CRC-32 (IEEE) of everything before it, little-endian
type envelope struct {
	Kind  string
	Timer time.Time // zero: no timer pending
	Data  []byte
}

const (
	envelopeMagic   = "SRoo"
	envelopeVersion = 1
	// maxEnvelopeKind bounds the kind string: it names a format, it is
	// never large.
	maxEnvelopeKind = 256
)

// errCorrupt is wrapped by every decoding error of an envelope.
var errCorrupt = errors.New("corrupt room snapshot")

func (e envelope) encode() []byte {
	b := make([]byte, 0, len(envelopeMagic)+1+binary.MaxVarintLen64*3+len(e.Kind)+len(e.Data)+4)
	b = append(b, envelopeMagic...)
	b = append(b, envelopeVersion)
	b = binary.AppendUvarint(b, uint64(len(e.Kind)))
	b = append(b, e.Kind...)
	var deadline int64
	if !e.Timer.IsZero() {
		deadline = max(e.Timer.UnixMilli(), 1)
	}
	b = binary.AppendVarint(b, deadline)
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	b = append(b, e.Data...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// decodeEnvelope decodes b. The data it returns aliases b. Every length is
// checked against what is left of b before it is used, so a bad record
// never makes it allocate.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) < len(envelopeMagic)+1+4 {
		return e, fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(b))
	}
	if string(b[:len(envelopeMagic)]) != envelopeMagic {
		return e, fmt.Errorf("%w: not a stateroom snapshot (bad magic)", errCorrupt)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return e, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", errCorrupt)
	}
	if v := body[len(envelopeMagic)]; v != envelopeVersion {
		return e, fmt.Errorf("%w: format version %d, this server reads version %d; upgrade the server", errCorrupt, v, envelopeVersion)
	}
	rest := body[len(envelopeMagic)+1:]
	bytesField := func(what string, limit int) ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) || n > uint64(limit) {
			return nil, fmt.Errorf("%w: bad %s length", errCorrupt, what)
		}
		f := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return f, nil
	}
	kind, err := bytesField("kind", maxEnvelopeKind)
	if err != nil {
		return e, err
	}
	e.Kind = string(kind)
	deadline, k := binary.Varint(rest)
	if k <= 0 || deadline < 0 {
		return e, fmt.Errorf("%w: bad timer deadline", errCorrupt)
	}
	rest = rest[k:]
	if deadline > 0 {
		e.Timer = time.UnixMilli(deadline)
	}
	if e.Data, err = bytesField("data", len(rest)); err != nil {
		return e, err
	}
	if len(rest) != 0 {
		return e, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(rest))
	}
	return e, nil
}
