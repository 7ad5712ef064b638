package rooms

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range []envelope{
		{},
		{Kind: "wasm-memory:abc", Data: []byte("state")},
		{Timer: time.UnixMilli(1_800_000_000_123), Data: bytes.Repeat([]byte{0xff}, 70_000)},
	} {
		b := e.encode()
		got, err := decodeEnvelope(b)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", e.Kind, err)
		}
		if got.Kind != e.Kind || !got.Timer.Equal(e.Timer) || !bytes.Equal(got.Data, e.Data) {
			t.Fatalf("round trip: got %q %v %d bytes, want %q %v %d bytes", got.Kind, got.Timer, len(got.Data), e.Kind, e.Timer, len(e.Data))
		}
	}
}

func TestEnvelopeCorrupt(t *testing.T) {
	good := envelope{Kind: "k", Data: []byte("hello")}.encode()
	flipped := bytes.Clone(good)
	flipped[len(flipped)-6] ^= 1
	badVersion := bytes.Clone(good)
	badVersion[4] = 9
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"flipped":   flipped,
		"magic":     append([]byte("XXXX"), good[4:]...),
		"version":   badVersion, // the checksum fails first, as it should
		"trailing":  append(bytes.Clone(good), 0),
	} {
		if _, err := decodeEnvelope(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: got %v, want errCorrupt", name, err)
		}
	}
}

// FuzzEnvelope: decoding never panics, and whatever decodes re-encodes to
// the same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add(envelope{Kind: "k", Data: []byte("hello"), Timer: time.UnixMilli(5)}.encode())
	f.Add(envelope{}.encode())
	f.Add([]byte("SRoo\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if again := e.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decoded %q, re-encoded %q", b, again)
		}
	})
}
