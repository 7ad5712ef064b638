package loadgen

import (
	"errors"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	cases := []struct {
		sender, seq uint64
		nanos       int64
		size        int
	}{
		{0, 0, 0, 32},
		{7, 123456, 987654321, 64},
		{1 << 40, 1 << 50, 1 << 61, 32}, // longer than size: not truncated
	}
	for _, c := range cases {
		b := appendMessage([]byte("keep"), c.sender, c.seq, c.nanos, c.size)
		if string(b[:4]) != "keep" {
			t.Fatalf("appendMessage overwrote dst: %q", b)
		}
		b = b[4:]
		if len(b) < c.size {
			t.Errorf("message %q is %d bytes, want at least %d", b, len(b), c.size)
		}
		m, err := parseMessage(b)
		if err != nil {
			t.Fatalf("parseMessage(%q): %v", b, err)
		}
		if m.join || m.sender != c.sender || m.seq != c.seq || m.nanos != c.nanos {
			t.Errorf("parseMessage(%q) = %+v, want sender %d seq %d nanos %d", b, m, c.sender, c.seq, c.nanos)
		}
	}
	m, err := parseMessage(appendJoin(nil, 42))
	if err != nil || !m.join || m.client != 42 {
		t.Errorf("join round trip = %+v, %v; want join of client 42", m, err)
	}
}

func TestParseMessageRejects(t *testing.T) {
	for _, in := range []string{"", "j:", "j:x", "j:1:", "1:2", "1:2:3", "1:2:3:x", "a:2:3:", "1::3:", "99999999999999999999:1:1:", "1:1:9999999999999999999:"} {
		if m, err := parseMessage([]byte(in)); !errors.Is(err, errNotBench) {
			t.Errorf("parseMessage(%q) = %+v, %v; want errNotBench", in, m, err)
		}
	}
}

func TestParseMessageDoesNotAllocate(t *testing.T) {
	b := appendMessage(nil, 3, 99, 123456789, 64)
	if n := testing.AllocsPerRun(100, func() { _, _ = parseMessage(b) }); n != 0 {
		t.Errorf("parseMessage allocates %v times per call; it runs per delivered frame", n)
	}
}

// FuzzParseMessage: any input either fails with errNotBench or parses to a
// message that encodes back to an equivalent one.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("1:2:3:...."))
	f.Add([]byte("j:17"))
	f.Add([]byte("0:0:0:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			if !errors.Is(err, errNotBench) {
				t.Fatalf("parseMessage(%q): error %v does not wrap errNotBench", b, err)
			}
			return
		}
		var again []byte
		if m.join {
			again = appendJoin(nil, m.client)
		} else {
			again = appendMessage(nil, m.sender, m.seq, m.nanos, 0)
		}
		m2, err := parseMessage(again)
		if err != nil || m2 != m {
			t.Fatalf("parseMessage(%q) = %+v, re-encoded %q parses to %+v, %v", b, m, again, m2, err)
		}
	})
}
