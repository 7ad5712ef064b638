package abi

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	sr "github.com/stateroom-go/stateroom"
)

// vectorValues maps each vector's description in testdata/vectors.txt to the
// value it encodes.
var vectorValues = map[string]any{
	`Init`:                                     Event{Kind: EventInit},
	`Connect{client: 7}`:                       Event{Kind: EventConnect, Client: 7},
	`Disconnect{client: 7}`:                    Event{Kind: EventDisconnect, Client: 7},
	`Message{sender: 3, Text("hi")}`:           Event{Kind: EventMessage, Client: 3, Payload: sr.Text("hi")},
	`Message{sender: 3, Bytes([1,2,3])}`:       Event{Kind: EventMessage, Client: 3, Payload: sr.Binary([]byte{1, 2, 3})},
	`Timer`:                                    Event{Kind: EventTimer},
	`Connect{client: 4294967295}`:              Event{Kind: EventConnect, Client: 4294967295},
	`Message{sender: 258, Bytes([])}`:          Event{Kind: EventMessage, Client: 258, Payload: sr.Binary([]byte{})},
	`Message{sender: 1, Text("é")}`:            Event{Kind: EventMessage, Client: 1, Payload: sr.Text("é")},
	`Message{Broadcast, Text("x")}`:            Command{Kind: CommandMessage, To: sr.Everyone, Payload: sr.Text("x")},
	`Message{Client(5), Bytes([9])}`:           Command{Kind: CommandMessage, To: sr.To(5), Payload: sr.Binary([]byte{9})},
	`Message{EveryoneExcept(2), Text("")}`:     Command{Kind: CommandMessage, To: sr.EveryoneExcept(2), Payload: sr.Text("")},
	`SetTimer{ms_delay: 4000}`:                 Command{Kind: CommandSetTimer, DelayMS: 4000},
	`SetTimer{ms_delay: 0}`:                    Command{Kind: CommandSetTimer},
	`Message{Broadcast, Text("new value: 1")}`: Command{Kind: CommandMessage, To: sr.Everyone, Payload: sr.Text("new value: 1")},
	// The close extension.
	`Close{client: 5, code: 4100, reason: "bye"}`:        Command{Kind: CommandClose, Client: 5, Code: 4100, Reason: "bye"},
	`Close{client: 1, code: 1000, reason: ""}`:           Command{Kind: CommandClose, Client: 1, Code: sr.CloseNormal},
	`Close{client: 4294967295, code: 4999, reason: "é"}`: Command{Kind: CommandClose, Client: 4294967295, Code: sr.LastServiceCloseCode, Reason: "é"},
}

type vector struct {
	dir, desc string
	bytes     []byte
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			t.Fatalf("bad vector line %q", line)
		}
		b, err := hex.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("vector %q: %v", parts[1], err)
		}
		vs = append(vs, vector{parts[0], parts[1], b})
	}
	if len(vs) != len(vectorValues) {
		t.Fatalf("%d vectors in testdata, %d values in the test", len(vs), len(vectorValues))
	}
	return vs
}

func equalPayload(a, b sr.Payload) bool { return a.Binary == b.Binary && bytes.Equal(a.Data, b.Data) }

func equalCommand(a, b Command) bool {
	return a.Kind == b.Kind && a.To == b.To && a.DelayMS == b.DelayMS && equalPayload(a.Payload, b.Payload) &&
		a.Client == b.Client && a.Code == b.Code && a.Reason == b.Reason
}

func TestVectors(t *testing.T) {
	for _, v := range readVectors(t) {
		t.Run(v.desc, func(t *testing.T) {
			switch want := vectorValues[v.desc].(type) {
			case Event:
				if got := AppendEvent(nil, want); !bytes.Equal(got, v.bytes) {
					t.Errorf("AppendEvent = %x, want %x", got, v.bytes)
				}
				if n := EventSize(want); n != len(v.bytes) {
					t.Errorf("EventSize = %d, want %d", n, len(v.bytes))
				}
				got, err := DecodeEvent(v.bytes)
				if err != nil {
					t.Fatalf("DecodeEvent: %v", err)
				}
				if got.Kind != want.Kind || got.Client != want.Client || !equalPayload(got.Payload, want.Payload) {
					t.Errorf("DecodeEvent = %+v, want %+v", got, want)
				}
			case Command:
				if got := AppendCommand(nil, want); !bytes.Equal(got, v.bytes) {
					t.Errorf("AppendCommand = %x, want %x", got, v.bytes)
				}
				got, err := DecodeCommand(v.bytes)
				if err != nil {
					t.Fatalf("DecodeCommand: %v", err)
				}
				if !equalCommand(got, want) {
					t.Errorf("DecodeCommand = %+v, want %+v", got, want)
				}
			default:
				t.Fatalf("no value for vector %q", v.desc)
			}
		})
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name    string
		command bool
		in      string
		want    error
	}{
		{"empty event", false, "", ErrTruncated},
		{"short tag", false, "000000", ErrTruncated},
		{"unknown event", false, "05000000", ErrTag},
		{"connect without id", false, "01000000", ErrTruncated},
		{"trailing after init", false, "0000000000", ErrTrailing},
		{"trailing after connect", false, "010000000700000000", ErrTrailing},
		{"payload tag 2", false, "030000000300000002000000000000000000000000", ErrTag},
		{"length past end", false, "0300000003000000000000000400000000000000010203", ErrTruncated},
		{"huge length", false, "03000000030000000000000000000000000000ff", ErrTruncated},
		{"short length", false, "030000000300000000000000030000", ErrTruncated},
		{"bad utf8", false, "0300000003000000010000000100000000000000ff", ErrUTF8},
		{"empty command", true, "", ErrTruncated},
		{"unknown command", true, "03000000", ErrTag},
		{"close without anything", true, "02000000", ErrTruncated},
		{"close short code", true, "020000000500000004", ErrTruncated},
		{"close without reason", true, "02000000050000000410", ErrTruncated},
		{"close short reason length", true, "0200000005000000041003000000", ErrTruncated},
		{"close reason past end", true, "0200000005000000041004000000000000006279", ErrTruncated},
		{"close huge reason", true, "020000000500000004100000000000000080", ErrTruncated},
		{"close trailing", true, "02000000050000000410030000000000000062796500", ErrTrailing},
		{"unknown recipient", true, "00000000030000000100000000000000000000000000", ErrTag},
		{"client without id", true, "0000000001000000", ErrTruncated},
		{"timer short", true, "01000000a00f", ErrTruncated},
		{"timer trailing", true, "01000000a00f000000", ErrTrailing},
		{"message payload past end", true, "00000000000000000100000003000000000000000078", ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.command {
				_, err = DecodeCommand(mustHex(c.in))
			} else {
				_, err = DecodeEvent(mustHex(c.in))
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestDecodeCommandTextUnchecked: text a guest sends is not checked for
// UTF-8 (the room runtime drops an invalid text message, as for a native
// service); it decodes as text with the bytes the guest wrote.
func TestDecodeCommandTextUnchecked(t *testing.T) {
	c, err := DecodeCommand(mustHex("000000000100000007000000010000000300000000000000ff6180"))
	if err != nil {
		t.Fatalf("DecodeCommand: %v", err)
	}
	if c.Kind != CommandMessage || c.To != sr.To(7) || c.Payload.Binary || !bytes.Equal(c.Payload.Data, []byte{0xff, 'a', 0x80}) {
		t.Errorf("decoded %+v, want Message{Client(7), Text(ff 61 80)}", c)
	}
	c, err = DecodeCommand(mustHex("020000000300000004100200000000000000c328"))
	if err != nil {
		t.Fatalf("DecodeCommand: %v", err)
	}
	if c.Kind != CommandClose || c.Client != 3 || c.Code != 4100 || c.Reason != "\xc3(" {
		t.Errorf("decoded %+v, want Close{3, 4100, c3 28}", c)
	}
	// Events stay strict: the guest SDK hands their text to a service.
	if _, err := DecodeEvent(mustHex("0300000003000000010000000100000000000000ff")); !errors.Is(err, ErrUTF8) {
		t.Errorf("DecodeEvent of invalid text: err = %v, want ErrUTF8", err)
	}
}

// TestCommandRoundTrip encodes and decodes commands the vectors leave out:
// every close code width, long and odd reasons, client 0 (the codec
// carries it; the host decides what it means).
func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []Command{
		{Kind: CommandClose},
		{Kind: CommandClose, Client: 1, Code: 0xffff, Reason: strings.Repeat("r", 300)},
		{Kind: CommandClose, Client: 1 << 31, Code: sr.CloseServiceFault, Reason: "\xff\x00"},
		{Kind: CommandClose, Client: 9, Code: sr.FirstServiceCloseCode, Reason: "日本"},
		{Kind: CommandSetTimer, DelayMS: 0xffffffff},
		{Kind: CommandMessage, To: sr.EveryoneExcept(1 << 31), Payload: sr.Binary(bytes.Repeat([]byte{0}, 70000))},
	} {
		b := AppendCommand(nil, c)
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("%v: DecodeCommand(%x): %v", c.Kind, b[:min(len(b), 40)], err)
		}
		if !equalCommand(got, c) {
			t.Errorf("%v: round trip gave %+v, want %+v", c.Kind, got, c)
		}
		// A Close is 4 (tag) + 4 (client) + 2 (code) + 8 (length) bytes
		// and the reason: the code is bincode's u16, not a u32.
		if c.Kind == CommandClose && len(b) != 18+len(c.Reason) {
			t.Errorf("Close with a %d-byte reason encodes to %d bytes, want %d", len(c.Reason), len(b), 18+len(c.Reason))
		}
	}
}

func TestKindStrings(t *testing.T) {
	for k, want := range map[fmt.Stringer]string{
		CommandMessage:  "Message",
		CommandSetTimer: "SetTimer",
		CommandClose:    "Close",
		CommandKind(3):  "CommandKind(3)",
		EventTimer:      "Timer",
		EventKind(5):    "EventKind(5)",
	} {
		if got := k.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestRecipientI32(t *testing.T) {
	cases := []struct {
		r sr.Recipient
		v int32
	}{
		{sr.Everyone, 0},
		{sr.To(5), 5},
		{sr.EveryoneExcept(5), -5},
		{sr.To(1<<31 - 1), 1<<31 - 1},
		{sr.EveryoneExcept(1<<31 - 1), -(1<<31 - 1)},
	}
	for _, c := range cases {
		v, ok := RecipientToI32(c.r)
		if !ok || v != c.v {
			t.Errorf("RecipientToI32(%v) = %d, %v; want %d", c.r, v, ok, c.v)
		}
		r, ok := RecipientFromI32(c.v)
		if !ok || r != c.r {
			t.Errorf("RecipientFromI32(%d) = %v, %v; want %v", c.v, r, ok, c.r)
		}
	}
	if _, ok := RecipientToI32(sr.To(1 << 31)); ok {
		t.Error("RecipientToI32 accepted id 2^31")
	}
	if _, ok := RecipientToI32(sr.To(0)); ok {
		t.Error("RecipientToI32 accepted client 0")
	}
	if _, ok := RecipientFromI32(-1 << 31); ok {
		t.Error("RecipientFromI32 accepted MinInt32")
	}
}

// FuzzDecodeEvent checks that decoding never panics, that whatever decodes
// encodes back to the same bytes (the encoding is canonical), and that a
// decoded text message is valid UTF-8 (events stay strict: the guest SDK
// hands their text to a service).
func FuzzDecodeEvent(f *testing.F) {
	for _, v := range vectorValues {
		if ev, ok := v.(Event); ok {
			f.Add(AppendEvent(nil, ev))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err != nil {
			return
		}
		if again := AppendEvent(nil, ev); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x decoded to %+v, encoded to %x", b, ev, again)
		}
		if ev.Kind == EventMessage && !ev.Payload.Binary && !utf8.Valid(ev.Payload.Data) {
			t.Fatalf("%x decoded to text that is not UTF-8: %x", b, ev.Payload.Data)
		}
	})
}

// FuzzDecodeCommand is FuzzDecodeEvent for MessageFromProcess, the close
// extension included, without the UTF-8 property: commands carry text as
// the guest wrote it.
func FuzzDecodeCommand(f *testing.F) {
	for _, v := range vectorValues {
		if c, ok := v.(Command); ok {
			f.Add(AppendCommand(nil, c))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if again := AppendCommand(nil, c); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x decoded to %+v, encoded to %x", b, c, again)
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	in := AppendEvent(nil, Event{Kind: EventMessage, Client: 3, Payload: sr.Text("increment")})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendCommand(b *testing.B) {
	c := Command{Kind: CommandMessage, To: sr.Everyone, Payload: sr.Text("new value: 1")}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCommand(buf[:0], c)
	}
}
