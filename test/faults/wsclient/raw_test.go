package wsclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame: whatever bytes a server sends, readFrame returns a frame
// or an error, never panics, and never returns more payload than the
// header declared or MaxFrame. Two buffer sizes cover the in-place path and
// the copying one.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x81, 0x02, 'h', 'i'})
	f.Add([]byte{0x82, 0x7e, 0x00, 0x80})
	f.Add([]byte{0x82, 0x7f, 0xff, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x88, 0x82, 1, 2, 3, 4, 0x02, 0xea})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, size := range []int{16, 4096} {
			var buf []byte
			br := bufio.NewReaderSize(bytes.NewReader(in), size)
			for {
				fr, err := readFrame(br, &buf)
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrame) {
						t.Fatalf("unexpected error %v", err)
					}
					break
				}
				if len(fr.Payload) > MaxFrame || len(fr.Payload) > len(in) {
					t.Fatalf("a %d-byte payload from %d bytes of input", len(fr.Payload), len(in))
				}
			}
		}
	})
}

// FuzzFrameRoundTrip: a frame AppendFrame encodes reads back with the same
// flags and payload, masked or not.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(byte(OpText), true, true, []byte("hello"))
	f.Add(byte(OpBinary), false, false, make([]byte, 300))
	f.Add(byte(OpPing), true, true, []byte{})
	f.Add(byte(OpBinary), true, true, make([]byte, 70000))
	f.Fuzz(func(t *testing.T, op byte, fin, masked bool, payload []byte) {
		in := Frame{Fin: fin, Op: op & 0x0f, Masked: masked, Payload: payload}
		enc := AppendFrame(nil, in)
		var buf []byte
		br := bufio.NewReaderSize(bytes.NewReader(enc), 64)
		out, err := readFrame(br, &buf)
		if err != nil {
			t.Fatalf("reading back %+v: %v", in, err)
		}
		if out.Fin != in.Fin || out.Op != in.Op || !bytes.Equal(out.Payload, payload) {
			t.Fatalf("read back fin %v op %d %d bytes; wrote fin %v op %d %d bytes", out.Fin, out.Op, len(out.Payload), in.Fin, in.Op, len(payload))
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("bytes left after the frame (err %v)", err)
		}
	})
}

// TestAppendFrameDeclaredLength: Length overrides the payload's length in
// the header, for frames that promise more than they carry.
func TestAppendFrameDeclaredLength(t *testing.T) {
	enc := AppendFrame(nil, Frame{Fin: true, Op: OpBinary, Length: 1000, Payload: []byte("abc")})
	want := []byte{0x82, 126, 0x03, 0xe8, 'a', 'b', 'c'}
	if !bytes.Equal(enc, want) {
		t.Fatalf("got % x, want % x", enc, want)
	}
	var buf []byte
	_, err := readFrame(bufio.NewReader(bytes.NewReader(enc)), &buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading a truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestParseClose(t *testing.T) {
	if c, r := ParseClose(CloseBody(4000, "slow")); c != 4000 || r != "slow" {
		t.Errorf("ParseClose = %d %q", c, r)
	}
	if c, _ := ParseClose(nil); c != CloseNoStatus {
		t.Errorf("ParseClose(nil) = %d, want %d", c, CloseNoStatus)
	}
}
