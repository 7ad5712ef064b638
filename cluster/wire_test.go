package cluster

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// hi is a frame shared by several links (one group on the wire).
var hi = []byte{0x81, 2, 'h', 'i'}

var wireSamples = []*message{
	{op: opJoin, gateway: "node-1", incarnation: "ab12", link: 7, room: "lobby/é", token: "tok", idKind: identityJSON, identity: []byte(`{"user":"ann"}`)},
	{op: opJoin, gateway: "n", incarnation: "x", link: 1 << 62, room: "r", idKind: identityNone},
	{op: opConnect, gateway: "n2", link: 9},
	{op: opRelease, gateway: "n2", link: 9},
	{op: opLeave, gateway: "n2", link: 9},
	{op: opMessage, gateway: "n2", link: 9, seq: 3, binary: true, payload: []byte{0, 1, 2}},
	{op: opMessage, gateway: "n2", link: 9, seq: 4, payload: []byte("héllo")},
	{op: opKick, gateway: "n2", link: 9, code: stateroom.CloseHeartbeatTimeout, reason: "heartbeat"},
	{op: opFrames, frames: []delivery{{1, 1, hi}, {2, 5, hi}}},
	{op: opFrames, frames: []delivery{{1, 1, hi}, {2, 5, hi}, {1, 2, []byte{0x82, 0}}, {7, 1, hi}}},
	{op: opClose, link: 3, seq: 8, code: stateroom.CloseServiceRestart, discard: true, reason: "restart"},
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range wireSamples {
		got, err := decodeMessage(encodeMessage(m))
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", m, err)
		}
		want := *m
		if len(want.identity) == 0 {
			want.identity = got.identity // nil and empty are the same on the wire
		}
		if len(want.payload) == 0 {
			want.payload = got.payload
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {99}, {opFrames}, {opFrames, 0}, {opFrames, 1, 1, 1, 2, 'h', 'i', 0}, {opMessage, 1, 'n', 1, 1, 0, 1, 0xff}, append(encodeMessage(wireSamples[2]), 0)} {
		if _, err := decodeMessage(bad); err == nil {
			t.Errorf("decodeMessage(%x) accepted malformed bytes", bad)
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	f, kind, _, err := decodeReply(replyOf(replyOK, 42), 1)
	if err != nil || kind != 0 || f[0] != 42 {
		t.Fatalf("OK reply: %v %d %v", f, kind, err)
	}
	_, kind, msg, err := decodeReply(replyErr(errKindRoomFull, "full"), 0)
	if err != nil || kind != errKindRoomFull || msg != "full" {
		t.Fatalf("error reply: %d %q %v", kind, msg, err)
	}
	for _, bad := range [][]byte{nil, {replyOK}, {replyError, 99, 0}, {7}} {
		if _, _, _, err := decodeReply(bad, 1); err == nil {
			t.Errorf("decodeReply(%x) accepted malformed bytes", bad)
		}
	}
}

// FuzzDecodeMessage feeds the decoder bytes from any peer: it must never
// panic, and what it accepts must encode back to an equal message. Its
// seeds (the samples above, and any input it finds, kept under
// testdata/fuzz) run as ordinary tests.
// Run: go test -fuzz=FuzzDecodeMessage ./cluster
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range wireSamples {
		f.Add(encodeMessage(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if again := encodeMessage(m); !bytes.Equal(again, b) {
			// Varints have one shortest form; a longer one decodes too.
			if m2, err := decodeMessage(again); err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("re-encoding %x gave %x (%v)", b, again, err)
			}
		}
		decodeReply(b, 1)
	})
}
