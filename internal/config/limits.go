package config

import (
	"maps"
	"strconv"
	"strings"
	"time"
)

// Limits is the [limits] table: the abuse limits of serve and dev, one key
// per flag. A zero field was not set.
//
//	[limits]
//	max_message_size = "1MiB"        # --max-message-size (or a number of bytes)
//	max_message_fragments = 1024     # --max-message-fragments
//	max_room_id_length = 256         # --max-room-id-length
//	max_rooms_created_per_ip = 100   # --max-rooms-created-per-ip, or "none"
//	allowed_hosts = ["app.example.com", "*.example.com"]  # --allowed-host
//	send_queue_size = "4MiB"         # --send-queue-size (or a number of bytes)
//	write_timeout = "10s"            # --write-timeout
//
// Counts and durations are checked by Parse; a size written as a string
// ("1MiB") is checked by the flag it sets, when ApplyFlags sets it (the
// error names the file and the key), so the size syntax has one parser.
type Limits struct {
	MaxMessageSize       string // as the flag takes it
	MaxMessageFragments  int
	MaxRoomIDLength      int
	MaxRoomsCreatedPerIP string // a positive count, or "none"
	AllowedHosts         []string
	SendQueueSize        string // as the flag takes it
	WriteTimeout         time.Duration
}

// limitsTable mirrors the [limits] table of the TOML document. The sizes
// and max_rooms_created_per_ip take a string or an integer.
type limitsTable struct {
	MaxMessageSize       any      `toml:"max_message_size"`
	MaxMessageFragments  *int64   `toml:"max_message_fragments"`
	MaxRoomIDLength      *int64   `toml:"max_room_id_length"`
	MaxRoomsCreatedPerIP any      `toml:"max_rooms_created_per_ip"`
	AllowedHosts         []string `toml:"allowed_hosts"`
	SendQueueSize        any      `toml:"send_queue_size"`
	WriteTimeout         *string  `toml:"write_timeout"`
}

// limitKeys are the [limits] keys, for validKeys.
const limitKeys = `, [limits] max_message_size, [limits] max_message_fragments, [limits] max_room_id_length` +
	`, [limits] max_rooms_created_per_ip, [limits] allowed_hosts, [limits] send_queue_size, [limits] write_timeout`

// limitTypes says what each [limits] key holds, for type errors.
var limitTypes = map[string]string{
	"limits":                       "a table [limits]",
	"limits.max_message_fragments": "a positive integer",
	"limits.max_room_id_length":    "a positive integer",
	"limits.allowed_hosts":         `an array of host names such as ["app.example.com"]`,
	"limits.write_timeout":         `a duration such as "10s"`,
}

// init adds the [limits] types to the table decodeError words type errors
// with, so that this table's keys stay in this file.
func init() { maps.Copy(expected, limitTypes) }

// parse checks the table into l; name is the file's path.
func (t *limitsTable) parse(name string, l *Limits) error {
	var err error
	if l.MaxMessageSize, err = sizeValue(name, "max_message_size", t.MaxMessageSize); err != nil {
		return err
	}
	if l.SendQueueSize, err = sizeValue(name, "send_queue_size", t.SendQueueSize); err != nil {
		return err
	}
	for _, c := range []struct {
		key string
		v   *int64
		dst *int
	}{
		{"max_message_fragments", t.MaxMessageFragments, &l.MaxMessageFragments},
		{"max_room_id_length", t.MaxRoomIDLength, &l.MaxRoomIDLength},
	} {
		if c.v == nil {
			continue
		}
		if *c.v <= 0 || *c.v > 1<<30 {
			return invalid("%s: [limits] %s = %d must be a positive number", name, c.key, *c.v)
		}
		*c.dst = int(*c.v)
	}
	switch v := t.MaxRoomsCreatedPerIP.(type) {
	case nil:
	case int64:
		if v <= 0 || v > 1<<30 {
			return invalid("%s: [limits] max_rooms_created_per_ip = %d must be a positive number of rooms per minute, or \"none\"", name, v)
		}
		l.MaxRoomsCreatedPerIP = strconv.FormatInt(v, 10)
	case string:
		if !strings.EqualFold(strings.TrimSpace(v), "none") {
			return invalid("%s: [limits] max_rooms_created_per_ip = %q must be a positive number of rooms per minute (an integer), or \"none\"", name, v)
		}
		l.MaxRoomsCreatedPerIP = "none"
	default:
		return invalid("%s: [limits] max_rooms_created_per_ip must be a positive integer or \"none\", found %T", name, v)
	}
	for _, h := range t.AllowedHosts {
		if strings.TrimSpace(h) == "" {
			return invalid("%s: [limits] allowed_hosts holds an empty name; list host names such as \"app.example.com\"", name)
		}
	}
	l.AllowedHosts = t.AllowedHosts
	if t.WriteTimeout != nil {
		d, err := time.ParseDuration(strings.TrimSpace(*t.WriteTimeout))
		if err != nil || d <= 0 {
			return invalid("%s: [limits] write_timeout = %q must be a positive duration such as \"10s\"", name, *t.WriteTimeout)
		}
		l.WriteTimeout = d
	}
	return nil
}

// sizeValue is the flag value of a size key: an integer is a number of
// bytes, a string is passed on as written.
func sizeValue(name, key string, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case int64:
		if v <= 0 {
			return "", invalid("%s: [limits] %s = %d must be a positive number of bytes, or a size such as \"1MiB\"", name, key, v)
		}
		return strconv.FormatInt(v, 10), nil
	case string:
		if strings.TrimSpace(v) == "" {
			return "", invalid("%s: [limits] %s is empty; write a size such as \"1MiB\"", name, key)
		}
		return v, nil
	}
	return "", invalid("%s: [limits] %s must be a size such as \"1MiB\" or a number of bytes, found %T", name, key, v)
}

// appendFlags appends the table's flag settings to out; l may be nil.
func (l *Limits) appendFlags(out []FlagSetting) []FlagSetting {
	if l == nil {
		return out
	}
	add := func(key, flag, v string) {
		if v != "" {
			out = append(out, FlagSetting{"[limits] " + key, flag, v})
		}
	}
	count := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	add("max_message_size", "max-message-size", l.MaxMessageSize)
	add("max_message_fragments", "max-message-fragments", count(l.MaxMessageFragments))
	add("max_room_id_length", "max-room-id-length", count(l.MaxRoomIDLength))
	add("max_rooms_created_per_ip", "max-rooms-created-per-ip", l.MaxRoomsCreatedPerIP)
	for _, h := range l.AllowedHosts {
		add("allowed_hosts", "allowed-host", h)
	}
	add("send_queue_size", "send-queue-size", l.SendQueueSize)
	if l.WriteTimeout != 0 {
		add("write_timeout", "write-timeout", l.WriteTimeout.String())
	}
	return out
}
