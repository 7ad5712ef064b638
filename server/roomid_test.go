package server

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseRoomID(t *testing.T) {
	for _, tc := range []struct {
		escaped, want, err string
	}{
		{"lobby", "lobby", ""},
		{"a%2Fb", "a/b", ""},
		{"caf%C3%A9", "café", ""},
		{"x%20y", "x y", ""},
		{"", "", "empty room id"},
		{"%zz", "", "percent-encode"},
		{"%ff", "", "not valid UTF-8"},
		{strings.Repeat("a", 11), "", "limit is 10"},
		{strings.Repeat("%C3%A9", 6), "", "12 bytes long"},
	} {
		got, err := parseRoomID(tc.escaped, 10, "Options.MaxRoomIDLength")
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("parseRoomID(%q) = %q, %v; want %q", tc.escaped, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseRoomID(%q) = %q, %v; want an error containing %q", tc.escaped, got, err, tc.err)
		}
	}
}

// FuzzParseRoomID checks that any path suffix either gives a room id that
// is non-empty, valid UTF-8, within the limit and round-trips through
// percent-encoding, or an error; never a panic. Seeds: testdata/fuzz.
func FuzzParseRoomID(f *testing.F) {
	for _, s := range []string{"lobby", "a%2Fb", "%", "%zz", "%ff", "caf%C3%A9", "", "a/b/c", "%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		id, err := parseRoomID(escaped, 64, "Options.MaxRoomIDLength")
		if err != nil {
			if id != "" {
				t.Fatalf("parseRoomID(%q) returned %q with error %v", escaped, id, err)
			}
			return
		}
		if id == "" || len(id) > 64 || !utf8.ValidString(id) {
			t.Fatalf("parseRoomID(%q) accepted %q", escaped, id)
		}
		if back, err := url.PathUnescape(url.PathEscape(id)); err != nil || back != id {
			t.Fatalf("room id %q does not round-trip: %q, %v", id, back, err)
		}
	})
}
