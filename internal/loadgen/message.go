package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// minMessageSize is the smallest Options.Size: room for a sender number,
// a sequence number and a send time of realistic magnitude.
const minMessageSize = 32

// dots is the padding of bench messages, to compare with.
var dots = bytes.Repeat([]byte{'.'}, 512)

// errNotBench says a frame is not a bench or join message: the server is
// probably not a relay.
var errNotBench = errors.New("loadgen: not a bench message")

// message is one decoded bench frame.
type message struct {
	join   bool   // a "j:N" join message; only client is set
	client uint64 // global client number of a join message
	sender uint64 // global sender number
	seq    uint64
	nanos  int64 // send time, nanoseconds since the run started
}

// appendMessage appends the bench message for (sender, seq, nanos) padded
// with '.' to size bytes (or longer if the fields need it) to dst.
func appendMessage(dst []byte, sender, seq uint64, nanos int64, size int) []byte {
	start := len(dst)
	dst = strconv.AppendUint(dst, sender, 10)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, nanos, 10)
	dst = append(dst, ':')
	for len(dst)-start < size {
		dst = append(dst, '.')
	}
	return dst
}

// appendJoin appends the join message of global client number n to dst.
func appendJoin(dst []byte, n uint64) []byte {
	return strconv.AppendUint(append(dst, 'j', ':'), n, 10)
}

// parseMessage decodes a bench or join message. It does not allocate on
// success: it runs once per delivered frame.
func parseMessage(b []byte) (message, error) {
	var m message
	if len(b) >= 2 && b[0] == 'j' && b[1] == ':' {
		n, rest, ok := parseUint(b[2:])
		if !ok || len(rest) != 0 {
			return m, fmt.Errorf("%w: join message %.40q is not \"j:N\"", errNotBench, b)
		}
		m.join, m.client = true, n
		return m, nil
	}
	var fields [3]uint64
	rest := b
	for i := range fields {
		n, r, ok := parseUint(rest)
		if !ok || len(r) == 0 || r[0] != ':' {
			return m, fmt.Errorf("%w: %.40q is not \"SENDER:SEQ:NANOS:\" padded with '.'", errNotBench, b)
		}
		fields[i], rest = n, r[1:]
	}
	for len(rest) > 0 { // compared in chunks: this runs per delivered frame
		n := min(len(rest), len(dots))
		if !bytes.Equal(rest[:n], dots[:n]) {
			return m, fmt.Errorf("%w: %.40q has padding other than '.'", errNotBench, b)
		}
		rest = rest[n:]
	}
	if fields[2] > 1<<62 {
		return m, fmt.Errorf("%w: send time in %.40q is out of range", errNotBench, b)
	}
	m.sender, m.seq, m.nanos = fields[0], fields[1], int64(fields[2])
	return m, nil
}

// parseUint reads a decimal number of at most 19 digits (so it cannot
// overflow) from the start of b and returns it with the rest of b.
func parseUint(b []byte) (n uint64, rest []byte, ok bool) {
	i := 0
	for ; i < len(b) && i < 19 && '0' <= b[i] && b[i] <= '9'; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	return n, b[i:], i > 0
}
