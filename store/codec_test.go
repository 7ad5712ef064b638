package store

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDecodeRecordMalformed(t *testing.T) {
	good := appendRecord(nil, 7, time.Unix(1700000000, 123).UTC(), []byte("data"))
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	tests := []struct {
		name   string
		v      []byte
		header string // error of decodeHeader, "" if it reads
		record string // error of decodeRecord
	}{
		{"nil", nil, "truncated", "truncated"},
		{"one byte", []byte{1}, "truncated", "truncated"},
		{"header less a byte", good[:recordHeaderLen-1], "truncated", "truncated"},
		{"unknown version", flip(0), "unknown record format", "unknown record format"},
		{"revision 0", appendRecord(nil, 0, time.Unix(0, 0), nil), "revision 0", "revision 0"},
		{"flipped revision", flip(8), "", "checksum mismatch"},
		{"flipped time", flip(12), "", "checksum mismatch"},
		{"flipped checksum", flip(18), "", "checksum mismatch"},
		{"flipped data", flip(len(good) - 1), "", "checksum mismatch"},
		{"truncated data", good[:len(good)-1], "", "checksum mismatch"},
		{"extra data", append(bytes.Clone(good), 'x'), "", "checksum mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeHeader(tc.v)
			if (err == nil) != (tc.header == "") || err != nil && !strings.Contains(err.Error(), tc.header) {
				t.Errorf("decodeHeader: %v; want %q", err, tc.header)
			}
			_, _, err = decodeRecord(tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.record) {
				t.Errorf("decodeRecord: %v; want %q", err, tc.record)
			}
			in := infoOf("r", tc.v)
			if tc.header != "" && (in.Revision != 0 || in.Size != len(tc.v)) {
				t.Errorf("infoOf an unreadable header = %+v", in)
			}
		})
	}
	h, data, err := decodeRecord(good)
	if err != nil || h.revision != 7 || !h.saved.Equal(time.Unix(1700000000, 123)) || string(data) != "data" {
		t.Fatalf("decodeRecord(good) = %+v %q %v", h, data, err)
	}
}

func TestDecodeAsideMalformed(t *testing.T) {
	rec := appendRecord(nil, 3, time.Unix(5, 0), []byte("state"))
	good := appendAside(nil, asideMeta{room: "room", reason: "why", at: time.Unix(9, 0)}, rec)
	metaLen := 1 + 8 + 4 + len("room") + 4 + len("why") + 4
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	tests := []struct {
		name, want string
		v          []byte
	}{
		{"nil", "truncated", nil},
		{"short head", "truncated", good[:12]},
		{"unknown version", "unknown set-aside format", flip(0)},
		{"room longer than the value", "truncated", func() []byte { b := bytes.Clone(good); b[9] = 0xff; return b }()},
		{"cut in the room", "truncated", good[:15]},
		{"cut in the reason length", "truncated", good[:13+4+2]},
		{"cut in the reason", "truncated", good[:13+4+4+1]},
		{"cut in the checksum", "truncated", good[:metaLen-1]},
		{"flipped room", "checksum mismatch", flip(14)},
		{"flipped time", "checksum mismatch", flip(3)},
		{"flipped reason", "checksum mismatch", flip(13 + 4 + 4 + 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeAside(tc.v); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decodeAside: %v; want %q", err, tc.want)
			}
		})
	}
	m, raw, err := decodeAside(good)
	if err != nil || m.room != "room" || m.reason != "why" || !m.at.Equal(time.Unix(9, 0)) || !bytes.Equal(raw, rec) {
		t.Fatalf("decodeAside(good) = %+v %q %v", m, raw, err)
	}
	// The record inside is verified on its own: a damaged one is kept as is.
	m, raw, err = decodeAside(appendAside(nil, asideMeta{room: "r"}, []byte("junk")))
	if err != nil || string(raw) != "junk" || m.room != "r" {
		t.Fatalf("set-aside of a damaged record = %+v %q %v", m, raw, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, time.Unix(0, 0), nil))
	f.Add(appendRecord(nil, 1<<63, time.Unix(1700000000, 5), []byte("some data")))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		in := infoOf("r", v) // must not panic
		h, data, err := decodeRecord(v)
		if err != nil {
			return
		}
		if h.revision == 0 || in.Revision != h.revision || in.Size != len(data) || !in.Saved.Equal(h.saved) {
			t.Fatalf("decoded %+v %d bytes; infoOf says %+v", h, len(data), in)
		}
		if again := appendRecord(nil, h.revision, h.saved, data); !bytes.Equal(again, v) {
			t.Fatalf("re-encoding %x gives %x", v, again)
		}
	})
}

func FuzzDecodeAside(f *testing.F) {
	f.Add(appendAside(nil, asideMeta{room: "room", reason: "why", at: time.Unix(9, 0)}, appendRecord(nil, 3, time.Unix(5, 0), []byte("x"))))
	f.Add(appendAside(nil, asideMeta{}, nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, raw, err := decodeAside(v)
		if err != nil {
			return
		}
		if again := appendAside(nil, m, raw); !bytes.Equal(again, v) {
			t.Fatalf("re-encoding %x gives %x", v, again)
		}
	})
}

func TestChecks(t *testing.T) {
	if err := checkData("r", MaxDataLength); err != nil {
		t.Errorf("checkData(MaxDataLength): %v", err)
	}
	if err := checkData("r", MaxDataLength+1); err == nil || !strings.Contains(err.Error(), "keep less state") {
		t.Errorf("checkData(MaxDataLength+1): %v", err)
	}
	if got := cutReason(strings.Repeat("a", MaxReasonLength-1) + "é"); got != strings.Repeat("a", MaxReasonLength-1) {
		t.Errorf("cutReason cut inside a rune: %q", got[len(got)-3:])
	}
	if got := cutReason("short"); got != "short" {
		t.Errorf("cutReason(short) = %q", got)
	}
}

func TestMaxDataLength(t *testing.T) {
	if MaxDataLength != (1<<31-2)-recordHeaderLen {
		t.Fatalf("MaxDataLength = %d; want bbolt's MaxValueSize less %d", MaxDataLength, recordHeaderLen)
	}
}
