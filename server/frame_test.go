package server

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// FuzzServerFrame checks that every frame the server builds reads back
// through gobwas's parser as the same final, unmasked frame.
func FuzzServerFrame(f *testing.F) {
	f.Add(byte(ws.OpText), []byte("hello"))
	f.Add(byte(ws.OpBinary), make([]byte, 126))
	f.Add(byte(ws.OpBinary), make([]byte, 65536))
	f.Add(byte(ws.OpPong), []byte{})
	f.Fuzz(func(t *testing.T, op byte, payload []byte) {
		code := ws.OpCode(op & 0x0f)
		frame := serverFrame(code, payload)
		got, err := readFrame(bytes.NewReader(frame))
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if !got.Header.Fin || got.Header.Masked || got.Header.Rsv != 0 || got.Header.OpCode != code || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("round trip of op %d, %d bytes: got %+v", code, len(payload), got.Header)
		}
		if want := ws.HeaderSize(got.Header) + len(payload); len(frame) != want {
			t.Fatalf("frame is %d bytes, want %d", len(frame), want)
		}
	})
}

func TestCloseFrame(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), 100))
	for _, tc := range []struct {
		code   int
		reason string
		want   string
	}{
		{
			code:   1000,
			reason: "",
			want:   "",
		},
		{
			code:   4000,
			reason: "slow consumer",
			want:   "slow consumer",
		},
		{
			code:   1011,
			reason: long,
			want:   long[:122], // 61 runes of 2 bytes: 123 would split one
		},
	} {
		f, err := readFrame(bytes.NewReader(closeFrame(stateroom.CloseCode(tc.code), tc.reason)))
		if err != nil {
			t.Fatal(err)
		}
		code, reason := ws.ParseCloseFrameData(f.Payload)
		if int(code) != tc.code || reason != tc.want || !utf8.ValidString(reason) {
			t.Errorf("closeFrame(%d, %d bytes): got %d %q", tc.code, len(tc.reason), code, reason)
		}
	}
	if f, _ := readFrame(bytes.NewReader(closeFrame(0, "ignored"))); len(f.Payload) != 0 {
		t.Errorf("code 0 must give a bodiless close frame, got %q", f.Payload)
	}
}

// FuzzMessageReader feeds arbitrary client bytes to the message reader: it
// must never panic, never return a message over the limit or invalid UTF-8
// text, and end with an error closeFor understands or a plain I/O error.
func FuzzMessageReader(f *testing.F) {
	mask := func(fr ws.Frame) []byte {
		return ws.MustCompileFrame(ws.MaskFrameWith(fr, [4]byte{9, 8, 7, 6}))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(mask(ws.NewTextFrame([]byte("hello"))))
	f.Add(mask(ws.NewBinaryFrame(make([]byte, 300))))
	f.Add(cat(
		mask(ws.NewFrame(ws.OpText, false, []byte("hel"))),
		mask(ws.NewPingFrame([]byte("p"))),
		mask(ws.NewFrame(ws.OpContinuation, true, []byte("lo"))),
	))
	f.Add(mask(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "bye"))))
	f.Add(mask(ws.NewTextFrame([]byte{0xff})))
	f.Add(ws.MustCompileFrame(ws.NewTextFrame([]byte("unmasked"))))
	f.Add(mask(ws.NewBinaryFrame(bytes.Repeat([]byte{7}, 5000)))) // a read past wireBufSize
	f.Add(mask(ws.NewBinaryFrame(make([]byte, 7000))))            // over the limit
	const limit = 6000
	const maxFrames = 8 // so that the fuzzer reaches the fragment limit
	f.Fuzz(func(t *testing.T, data []byte) {
		mr := newMessageReader(bytes.NewReader(data), limit, maxFrames)
		// The same bytes through a wireReader, arriving in chunks of
		// varying size, waited for between messages as a connection
		// does, must give the same messages and the same end.
		var wire wireReader
		wire.reset(&chunkReader{data: data}, nil)
		wmr := newMessageReader(&wire, limit, maxFrames)
		wmr.onPing = func([]byte) error { return nil }
		defer wmr.release()
		defer wire.release()
		wireNext := func() (stateroom.Payload, error) {
			if !wire.buffered() {
				wmr.release()
				if err := wire.wait(); err != nil {
					return stateroom.Payload{}, err
				}
			}
			return wmr.next()
		}
		var pongs int
		mr.onPing = func(p []byte) error {
			if len(p) > ws.MaxControlFramePayloadSize {
				t.Fatalf("ping payload of %d bytes", len(p))
			}
			pongs++
			return nil
		}
		for range len(data) + 1 {
			p, err := mr.next()
			wp, werr := wireNext()
			if (err == nil) != (werr == nil) || (err == nil && (p.Binary != wp.Binary || !bytes.Equal(p.Data, wp.Data))) {
				t.Fatalf("through a wireReader: %q binary=%v err=%v; directly: %q binary=%v err=%v", wp.Data, wp.Binary, werr, p.Data, p.Binary, err)
			}
			if err != nil {
				code, reason, reachable := closeFor(err, &Options{MaxMessageSize: limit})
				if !reachable && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unclassified error %T %v", err, err)
				}
				if reachable && code != 0 && !code.Sendable() {
					t.Fatalf("close code %d (%q) for %v", code, reason, err)
				}
				return
			}
			if len(p.Data) > limit {
				t.Fatalf("message of %d bytes passed a %d-byte limit", len(p.Data), limit)
			}
			if !p.Binary && !utf8.Valid(p.Data) {
				t.Fatalf("invalid UTF-8 text passed: %q", p.Data)
			}
		}
		t.Fatal("reader made no progress")
	})
}

// chunkReader returns data in chunks whose sizes cycle through 1, 2, 3, ...
// 130 bytes, so reads stop at every offset of a frame, and the idle read
// (idleReadSize) is sometimes filled and sometimes not.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.n = c.n%130 + 1
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}
