package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Special values of [Options.RoomGracePeriod].
const (
	// EndRoomsImmediately ends a room as soon as its last client leaves.
	EndRoomsImmediately time.Duration = -1
	// KeepRoomsForever never ends a room for being empty: it lives until
	// [Server.CloseRoom], [Server.SwapFactory] or [Server.Shutdown].
	KeepRoomsForever time.Duration = -2
)

// Defaults of the [Options] fields left at zero.
const (
	DefaultRoomGracePeriod   = 30 * time.Second
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultHeartbeatTimeout  = 120 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxMessageSize    = 1 << 20
	DefaultSendQueueMessages = 1024
	DefaultSendQueueBytes    = 4 << 20
	DefaultMaxRoomIDLength   = 256
	DefaultRoom              = "default"
)

// ErrInvalidOptions is wrapped by the error [New] returns for an [Options]
// value it cannot use.
var ErrInvalidOptions = errors.New("server: invalid options")

// Options configures a [Server]. The zero value is usable: each field left at
// zero takes the default its comment states. [New] fills the defaults into
// its own copy and validates it; the caller's value is not changed.
type Options struct {
	// RoomGracePeriod is how long an empty room lives on after its last
	// client left, so a reconnecting client finds its state. Zero means 30 s.
	// EndRoomsImmediately ends empty rooms at once; KeepRoomsForever never
	// ends them. Other negative values are an error.
	RoomGracePeriod time.Duration

	// HeartbeatInterval is how often the server pings every client. Zero
	// means 30 s.
	HeartbeatInterval time.Duration

	// HeartbeatTimeout closes a client that sent no frame at all (pongs
	// included) for this long, with stateroom.CloseHeartbeatTimeout. Zero
	// means 120 s. It must be longer than HeartbeatInterval.
	HeartbeatTimeout time.Duration

	// WriteTimeout bounds one write to a client's socket, and how long a
	// client gets to answer the server's close frame before its socket is
	// closed. Zero means 10 s.
	WriteTimeout time.Duration

	// MaxMessageSize is the largest message a client may send, in bytes, all
	// fragments together; a larger one closes the client with
	// stateroom.CloseMessageTooBig. Zero means 1 MiB.
	MaxMessageSize int64

	// SendQueueMessages is how many messages may wait in one client's
	// outbound queue; a client whose queue is full is closed with
	// stateroom.CloseSlowConsumer. Zero means 1024.
	SendQueueMessages int

	// SendQueueBytes is how many bytes may wait in one client's outbound
	// queue (a single larger message is still let into an empty queue).
	// Zero means 4 MiB.
	SendQueueBytes int

	// MaxRoomIDLength is the longest room id accepted, in bytes after
	// percent-decoding; a longer one gets 400 Bad Request. Zero means 256.
	MaxRoomIDLength int

	// DefaultRoom is the room of a connection to /ws with no room id. Empty
	// means "default".
	DefaultRoom string

	// StaticDir, when set, is a directory served at /. Empty means none.
	StaticDir string

	// ClientDir, when set, is a directory served at /client/. Empty means
	// none.
	ClientDir string

	// Logger receives the server's logs; lines about a room carry the
	// attribute "room", lines about a client also "client". Nil means
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns a copy of o with every zero field set to its default,
// or an error naming the first field it cannot use.
func (o Options) withDefaults() (Options, error) {
	if o.RoomGracePeriod == 0 {
		o.RoomGracePeriod = DefaultRoomGracePeriod
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.SendQueueMessages == 0 {
		o.SendQueueMessages = DefaultSendQueueMessages
	}
	if o.SendQueueBytes == 0 {
		o.SendQueueBytes = DefaultSendQueueBytes
	}
	if o.MaxRoomIDLength == 0 {
		o.MaxRoomIDLength = DefaultMaxRoomIDLength
	}
	if o.DefaultRoom == "" {
		o.DefaultRoom = DefaultRoom
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	if o.RoomGracePeriod < 0 && o.RoomGracePeriod != EndRoomsImmediately && o.RoomGracePeriod != KeepRoomsForever {
		return o, invalid("RoomGracePeriod is %v; use a positive duration, 0 for the default (30s), EndRoomsImmediately or KeepRoomsForever", o.RoomGracePeriod)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HeartbeatInterval", o.HeartbeatInterval},
		{"HeartbeatTimeout", o.HeartbeatTimeout},
		{"WriteTimeout", o.WriteTimeout},
	} {
		if d.v < 0 {
			return o, invalid("%s is %v; use a positive duration, or 0 for the default", d.name, d.v)
		}
	}
	if o.HeartbeatTimeout <= o.HeartbeatInterval {
		return o, invalid("HeartbeatTimeout (%v) must be longer than HeartbeatInterval (%v), or a client would be closed between two pings; raise HeartbeatTimeout", o.HeartbeatTimeout, o.HeartbeatInterval)
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"MaxMessageSize", o.MaxMessageSize},
		{"SendQueueMessages", int64(o.SendQueueMessages)},
		{"SendQueueBytes", int64(o.SendQueueBytes)},
		{"MaxRoomIDLength", int64(o.MaxRoomIDLength)},
	} {
		if n.v < 0 {
			return o, invalid("%s is %d; use a positive size, or 0 for the default", n.name, n.v)
		}
	}
	if len(o.DefaultRoom) > o.MaxRoomIDLength {
		return o, invalid("DefaultRoom is %d bytes long, more than MaxRoomIDLength (%d); shorten it or raise the limit", len(o.DefaultRoom), o.MaxRoomIDLength)
	}
	for _, d := range []struct{ name, dir string }{{"StaticDir", o.StaticDir}, {"ClientDir", o.ClientDir}} {
		if d.dir == "" {
			continue
		}
		fi, err := os.Stat(d.dir)
		if err != nil {
			return o, invalid("%s %q: %v; give an existing directory or leave it empty", d.name, d.dir, err)
		}
		if !fi.IsDir() {
			return o, invalid("%s %q is a file, not a directory; give the directory that holds it", d.name, d.dir)
		}
	}
	return o, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
}
