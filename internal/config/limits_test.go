package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestLimitsKeys(t *testing.T) {
	doc := `[limits]
max_message_size = "64KiB"
max_message_fragments = 8
max_room_id_length = 32
max_rooms_created_per_ip = "none"
allowed_hosts = ["app.example", "*.b.example"]
send_queue_size = 1048576
write_timeout = "3s"
`
	c, err := Parse("stateroom.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []FlagSetting{
		{"[limits] max_message_size", "max-message-size", "64KiB"},
		{"[limits] max_message_fragments", "max-message-fragments", "8"},
		{"[limits] max_room_id_length", "max-room-id-length", "32"},
		{"[limits] max_rooms_created_per_ip", "max-rooms-created-per-ip", "none"},
		{"[limits] allowed_hosts", "allowed-host", "app.example"},
		{"[limits] allowed_hosts", "allowed-host", "*.b.example"},
		{"[limits] send_queue_size", "send-queue-size", "1048576"},
		{"[limits] write_timeout", "write-timeout", "3s"},
	}
	if got := c.FlagSettings(); !reflect.DeepEqual(got, want) {
		t.Fatalf("FlagSettings = %+v\nwant %+v", got, want)
	}
	c, err = Parse("stateroom.toml", []byte("[limits]\nmax_rooms_created_per_ip = 7\n"))
	if err != nil || !reflect.DeepEqual(c.FlagSettings(), []FlagSetting{{"[limits] max_rooms_created_per_ip", "max-rooms-created-per-ip", "7"}}) {
		t.Fatalf("max_rooms_created_per_ip = 7: %+v, %v", c, err)
	}
	if c, err := Parse("stateroom.toml", nil); err != nil || c.Limits != nil {
		t.Fatalf("no [limits] table: %+v, %v", c, err)
	}
}

func TestLimitsKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"zero fragments", "[limits]\nmax_message_fragments = 0\n", "[limits] max_message_fragments = 0 must be a positive number"},
		{"string count", "[limits]\nmax_room_id_length = \"long\"\n", `"max_room_id_length" in [limits]: must be a positive integer, found string`},
		{"rooms per ip word", "[limits]\nmax_rooms_created_per_ip = \"many\"\n", `max_rooms_created_per_ip = "many" must be a positive number of rooms per minute (an integer), or "none"`},
		{"rooms per ip zero", "[limits]\nmax_rooms_created_per_ip = 0\n", "max_rooms_created_per_ip = 0 must be a positive number"},
		{"rooms per ip float", "[limits]\nmax_rooms_created_per_ip = 1.5\n", "must be a positive integer or \"none\", found float64"},
		{"negative size", "[limits]\nmax_message_size = -1\n", "max_message_size = -1 must be a positive number of bytes"},
		{"empty size", "[limits]\nsend_queue_size = \"\"\n", "send_queue_size is empty"},
		{"bool size", "[limits]\nsend_queue_size = true\n", "send_queue_size must be a size such as \"1MiB\""},
		{"hosts not an array", "[limits]\nallowed_hosts = \"a.example\"\n", `"allowed_hosts" in [limits]: must be an array of host names`},
		{"empty host", "[limits]\nallowed_hosts = [\"\"]\n", "allowed_hosts holds an empty name"},
		{"bad timeout", "[limits]\nwrite_timeout = \"0s\"\n", `write_timeout = "0s" must be a positive duration`},
		{"unknown key", "[limits]\nmax_message = 1\n", `unknown key "max_message" in [limits]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tc.doc))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one matching ErrInvalid and containing %q", err, tc.want)
			}
		})
	}
}

// limitFlags registers the limit flags with the types serve and dev give
// them (cmd/stateroom flags.go): the sizes and the rooms-per-address limit
// parse their own syntax, so a string flag stands for them here.
func limitFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.String("max-message-size", "1MiB", "")
	fs.Int("max-message-fragments", 1024, "")
	fs.Int("max-room-id-length", 256, "")
	fs.String("max-rooms-created-per-ip", "100", "")
	fs.StringArray("allowed-host", nil, "")
	fs.String("send-queue-size", "4MiB", "")
	fs.Duration("write-timeout", 10*time.Second, "")
	return fs
}

// FuzzParseLimits checks that a [limits] table Parse accepts sets flags
// that take its values (the size strings aside, which the size flags
// check), and that every error matches ErrInvalid.
func FuzzParseLimits(f *testing.F) {
	f.Add([]byte("[limits]\nmax_message_size = \"1MiB\"\nmax_message_fragments = 1024\nmax_room_id_length = 256\nmax_rooms_created_per_ip = 100\nallowed_hosts = [\"a.example\"]\nsend_queue_size = 4194304\nwrite_timeout = \"10s\"\n"))
	f.Add([]byte("[limits]\nmax_rooms_created_per_ip = \"NONE\"\nwrite_timeout = \"1h2m\"\n"))
	f.Add([]byte("[limits]\nmax_room_id_length = 9223372036854775807\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if l := c.Limits; l != nil && (l.MaxMessageFragments < 0 || l.MaxRoomIDLength < 0 || l.WriteTimeout < 0) {
			t.Fatalf("Limits %+v accepted", l)
		}
		if err := c.ApplyFlags(limitFlags()); err != nil {
			t.Fatalf("ApplyFlags of a parsed file: %v", err)
		}
	})
}
