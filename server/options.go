package server

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stateroom-go/stateroom/store"
)

// NeverHibernate, as Options.HibernateAfter, keeps every room's instance
// for as long as the room lives.
const NeverHibernate time.Duration = -1

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
	DefaultRoomGracePeriod    = 30 * time.Second
	DefaultCheckpointInterval = time.Second
	DefaultHibernateAfter     = 5 * time.Minute
	DefaultHeartbeatInterval  = 30 * time.Second
	DefaultHeartbeatTimeout   = 120 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultMaxMessageSize     = 1 << 20
	DefaultSendQueueBytes     = 4 << 20
	DefaultMaxRoomIDLength    = 256
	DefaultRoom               = "default"

	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultMaxConnections       = 10000
	DefaultMaxConnectionsPerIP  = 256
	DefaultMaxRooms             = 10000
	DefaultMaxClientsPerRoom    = 1000
	DefaultMessageRate          = 100
	DefaultMessageBurst         = 200
	DefaultMaxMessageFragments  = 1024
	DefaultMaxRoomsCreatedPerIP = 100
	DefaultMetricsPath          = "/metrics"
)

// NoLimit, given to one of the limits of [Options] (MaxConnections,
// MaxConnectionsPerIP, MaxRooms, MaxClientsPerRoom, MaxRoomsCreatedPerIP,
// MessageRate), turns that limit off.
const NoLimit = -1

// RateLimitAction is what the server does with a client that sends faster
// than [Options.MessageRate] allows: the value of
// [Options.MessageRateAction].
type RateLimitAction uint8

const (
	// Throttle, the default, stops reading the client's socket until it is
	// within its rate again: nothing is lost, the client's own writes
	// block once the kernel's buffers are full (TCP flow control), and its
	// messages reach the service in order at the rate. A throttled client
	// counts as active for the heartbeat (it is sending; the server is
	// the one not reading), and a pong it sends behind its backlog is
	// read when its turn comes.
	Throttle RateLimitAction = iota
	// CloseClient closes a client that sends faster than the rate allows
	// (beyond MessageBurst) with stateroom.ClosePolicyViolation (1008)
	// and the reason "message rate limit exceeded": for services where a
	// client that floods is a client to drop.
	CloseClient
)

// String returns "throttle" or "close".
func (a RateLimitAction) String() string {
	switch a {
	case Throttle:
		return "throttle"
	case CloseClient:
		return "close"
	}
	return "RateLimitAction(" + strconv.Itoa(int(a)) + ")"
}

// minAdminToken is the shortest Options.AdminToken accepted: a guessable
// token would open the admin API to anyone.
const minAdminToken = 16

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

	// KeepFreedMemory stops the server from handing memory back to the
	// operating system when connections close or rooms hibernate or end
	// en masse. By default, once at least half of the connections of a
	// peak (and at least 1024) have closed, or 256 rooms have hibernated
	// or ended since the last time (at most every 10 s), or no room is
	// left, 64 have since the last time and none starts or ends for a
	// second, the server asks the runtime
	// to return what they freed (debug.FreeOSMemory, one garbage
	// collection): the Go runtime would otherwise keep that memory
	// resident for minutes. Set it when the process does its own memory
	// management.
	KeepFreedMemory bool

	// Store makes rooms durable: a room whose service implements
	// stateroom.Snapshotter is saved to it after events (at most once per
	// CheckpointInterval), when the room ends and at Shutdown, and the
	// next instance of the room, in this process or a later one, is
	// restored from it before its Init. A room that ends (or was saved
	// by an earlier process) with its timer pending is started again at
	// the timer's deadline, with no client, so the timer fires. Nil
	// (the default) keeps rooms in memory only. The server does not close
	// the store. See package store for an embedded file store and an
	// in-memory one.
	Store store.Store

	// Cluster spreads rooms over the nodes of a cluster: a *cluster.Node
	// (package cluster) from cluster.Start. Clients may connect to any node;
	// a room runs on the node that owns it and the others forward to it.
	// With Cluster set and Store nil, rooms are saved to the cluster's
	// replicated store, so that a room moving to another node keeps its
	// state. The server does not close the node: close it after Shutdown.
	// Nil (the default) runs every room in this process and nothing of
	// NATS.
	Cluster Cluster

	// CheckpointInterval is the most often a room with events is saved to
	// Store. Zero means 1 s. A crash loses at most this much of a room's
	// events. Rooms' checkpoints fall on ten slots per interval shared by
	// all rooms, so that a store can commit many rooms' saves together.
	CheckpointInterval time.Duration

	// HibernateAfter is how long a room whose service implements
	// stateroom.Snapshotter may go without an event before it hibernates:
	// its instance is dropped and its snapshot kept (and saved to Store,
	// if any) while its clients stay connected; the next event restores
	// it (Init with Restored set) before it is handled. Zero means 5
	// minutes; NeverHibernate turns hibernation off.
	HibernateAfter time.Duration

	// WriteTimeout is how long a client may go without accepting what the
	// server writes to it: each 64 KiB of a write must be taken within it
	// (so a client that reads slowly still gets a large burst, and one
	// that stopped reading is closed as a slow consumer, with
	// stateroom_slow_consumer_disconnects_total counted), and it is how
	// long a client gets to answer the server's close frame before its
	// socket is closed. Zero means 10 s.
	WriteTimeout time.Duration

	// MaxMessageSize is the largest message a client may send, in bytes, all
	// fragments together; a larger one closes the client with
	// stateroom.CloseMessageTooBig. Zero means 1 MiB.
	MaxMessageSize int64

	// SendQueueMessages, when set, bounds how many messages may wait in
	// one client's outbound queue; a client whose queue is full is closed
	// with stateroom.CloseSlowConsumer. Zero means no count limit:
	// SendQueueBytes bounds the queue's memory by itself, and a burst of
	// many small messages to a client that reads reaches it whole.
	SendQueueMessages int

	// SendQueueBytes is how many bytes may wait in one client's outbound
	// queue, counting each message's bytes plus its place in the queue
	// (24 bytes), so it bounds the queue's memory however small the
	// messages; a single larger message is still let into an empty queue.
	// A client whose queue is full, because it reads slower than its room
	// sends, is closed with stateroom.CloseSlowConsumer and its queue
	// dropped. While the writer is busy with one batch the next fills, so
	// a client holds at most about twice this much. Zero means 4 MiB.
	SendQueueBytes int

	// MaxRoomIDLength is the longest room id accepted, in bytes after
	// percent-decoding; a longer one gets 400 Bad Request. Zero means 256.
	MaxRoomIDLength int

	// DefaultRoom is the room of a connection to /ws with no room id. Empty
	// means "default".
	DefaultRoom string

	// StaticDir, when set, is a directory served at /. Empty means none.
	// Only what a page needs is served: files, and a directory's
	// index.html. A directory without one is a 404, never a listing;
	// dotfiles and dot-directories (.env, .git; all but a top-level
	// .well-known) are a 404; a symlink is followed only if it stays
	// inside the directory and is relative (the directory is opened as
	// an os.Root for each request, so a rebuild that replaces it is
	// served at once).
	StaticDir string

	// StaticFS, when set, is a file system served at / (an embed.FS
	// subtree, say), for a server that ships its page inside the binary.
	// Nil means none; set StaticDir or StaticFS, not both. It is served
	// as StaticDir is: no listings, no dotfiles, and, when it can read
	// links (fs.ReadLinkFS, as os.DirFS), no symlink that leads out of
	// it.
	StaticFS fs.FS

	// ClientDir, when set, is a directory served at /client/, as StaticDir
	// is. Empty means none.
	ClientDir string

	// Logger receives the server's logs; lines about a room carry the
	// attribute "room", lines about a client also "client". Nil means
	// slog.Default().
	Logger *slog.Logger

	// AllowedOrigins lists the browser origins that may open a WebSocket,
	// against cross-site WebSocket hijacking: a page on another site could
	// otherwise connect with the visitor's cookies. Nil means same origin
	// only: the Origin header's scheme must be the request's (https over
	// TLS, or per X-Forwarded-Proto with TrustForwardedFor) and its
	// host:port the request's Host. Entries are exact origins
	// ("https://app.example.com", "http://localhost:5173") or patterns
	// with one leading wildcard label ("https://*.example.com", which does
	// not match example.com itself). A list replaces the same-origin rule:
	// the server's own page must be listed too, unless AllowedHosts is
	// set (then the own origin is accepted as well; without AllowedHosts,
	// "own origin" is whatever Host a rebound DNS name sends). Requests
	// without an Origin header (non-browser clients) are always allowed:
	// Authenticate or ClientToken is what keeps them out.
	//
	// WARNING: the entry "*" allows every origin, so any web page a
	// visitor opens can talk to your rooms as that visitor. Use it only
	// for services with no notion of who the client is.
	AllowedOrigins []string

	// Authenticate, when set, runs for every WebSocket request before the
	// upgrade (and before the room is created). An error refuses the
	// request with its message: 403 Forbidden if it wraps ErrForbidden,
	// 401 Unauthorized otherwise. The identity it returns stays with the
	// connection: the service gets it in stateroom.ConnectEvent.Identity
	// and, in later callbacks, from [ClientIdentity]. It runs on the
	// request's goroutine: use r.Context() for anything that may block.
	// Nil means no check.
	Authenticate func(r *http.Request, roomID string) (identity any, err error)

	// ClientToken, when set, is a shared secret every WebSocket client
	// must present, as the query parameter ?auth=TOKEN (browsers cannot
	// set headers on a WebSocket) or as the header "Authorization: Bearer
	// TOKEN"; others get 401. It is checked before Authenticate. Empty
	// means no token. Prefer Authenticate with per-user credentials in
	// production: a token in a URL ends up in proxy logs and browser
	// history.
	ClientToken string

	// AdminToken, when set, turns on the admin API (GET /admin/rooms,
	// POST /admin/rooms/{room}/close) for requests carrying
	// "Authorization: Bearer TOKEN". It must be at least 16 bytes. Empty
	// means the admin API is off (its paths get 404).
	AdminToken string

	// Metrics is where the server registers its Prometheus metrics. Nil
	// means a registry of the server's own, holding the server's metrics
	// plus the Go runtime and process collectors, so two servers in one
	// process never collide. To run two servers on one registry, wrap it
	// with prometheus.WrapRegistererWith and a label that tells them
	// apart. /metrics serves it if it is also a prometheus.Gatherer (a
	// *prometheus.Registry is); otherwise serve it yourself.
	Metrics prometheus.Registerer

	// MetricsPath is where the metrics are served on the server's handler.
	// Empty means "/metrics".
	MetricsPath string

	// DisableMetrics turns off the metrics route (they are still
	// registered with Metrics when that is set). Default false: metrics
	// are served.
	DisableMetrics bool

	// HandshakeTimeout bounds the WebSocket handshake: Serve and
	// ListenAndServe set it as the http.Server's ReadHeaderTimeout and
	// IdleTimeout (if you run your own http.Server, set both yourself, or a
	// client can hold a connection open by sending its headers slowly or
	// by idling between keep-alive requests), and it
	// bounds writing the upgrade response. Zero means 10 s.
	HandshakeTimeout time.Duration

	// MaxConnections bounds the WebSocket connections open at once; over
	// it a new one gets 503 Service Unavailable with Retry-After. Zero
	// means 10000; NoLimit means none.
	MaxConnections int

	// MaxConnectionsPerIP bounds the WebSocket connections open at once
	// from one remote address; over it a new one gets 429 Too Many
	// Requests with Retry-After. Behind a reverse proxy every client has
	// the proxy's address: set TrustForwardedFor. Zero means 256; NoLimit
	// means none.
	MaxConnectionsPerIP int

	// TrustForwardedFor makes the client's address, for
	// MaxConnectionsPerIP, MaxRoomsCreatedPerIP and logs, the last address
	// of the X-Forwarded-For header (the one your proxy appended) instead
	// of the TCP peer, and the request's scheme, for the same-origin
	// check, the last entry of X-Forwarded-Proto. Set it only behind a
	// proxy that sets those headers: a client talking to the server
	// directly can write anything there. Default false.
	TrustForwardedFor bool

	// MaxRooms bounds the rooms running at once; a connection that would
	// create one more gets 503 Service Unavailable with Retry-After. Zero
	// means 10000; NoLimit means none.
	MaxRooms int

	// MaxClientsPerRoom bounds the clients of one room. A connection to a
	// full room is upgraded and then closed at once with
	// stateroom.CloseTryAgainLater (1013) and the reason "room is full",
	// which a browser can show (it cannot read an HTTP error status). A
	// reconnection with the token of a connected client replaces it and is
	// never refused. Zero means 1000; NoLimit means none.
	MaxClientsPerRoom int

	// MessageRate is how many messages per second one client may send on
	// average. Pings and pongs count as messages: a control frame costs
	// the server a read (and a ping a pong), so a flood of them is a flood
	// like any other. A client that sends faster, beyond MessageBurst, is
	// throttled or closed, as MessageRateAction says. Zero means 100;
	// NoLimit means none.
	MessageRate float64

	// MessageBurst is how many messages a client may send at once above
	// MessageRate. Zero means 200 (or MessageRate, if that is higher).
	MessageBurst int

	// MessageRateAction is what happens to a client over MessageRate: the
	// zero value, Throttle, reads its messages at the rate (TCP
	// backpressure; nothing is lost); CloseClient closes it with
	// stateroom.ClosePolicyViolation (1008). Throttle episodes are counted
	// in stateroom_clients_throttled_total, closes in
	// stateroom_rate_limited_disconnects_total.
	MessageRateAction RateLimitAction

	// MaxMessageFragments bounds the frames one message may arrive in (its
	// first frame and its continuations). Each frame costs the server
	// about what a small message does, whatever its size, so without a
	// bound one message of empty fragments would be a flood that
	// MessageRate never sees. A message in more frames closes the client
	// with stateroom.CloseMessageTooBig (1009) and a reason naming this
	// option. Browsers send a message in one frame; libraries that
	// fragment use frames of kilobytes. Zero means 1024.
	MaxMessageFragments int

	// MaxRoomsCreatedPerIP bounds how many rooms one remote address (see
	// TrustForwardedFor) may create per minute, so that one client cannot
	// fill MaxRooms by creating rooms one after another: each address has
	// a token bucket of this many rooms that refills over a minute. Only
	// a connection that creates a room is charged (the room runtime asks
	// at the moment it would create one); joining a running room, even an
	// empty one in its grace period, is always free, and of two first
	// connections to a new room only the one that creates it pays. Over
	// the limit the connection gets 429 Too Many Requests with
	// Retry-After. Zero means 100; NoLimit means none (tests and load
	// generators on one address).
	MaxRoomsCreatedPerIP int

	// OptionNames renames options in what the server tells clients, and
	// writes to its log, when one of its limits refuses or closes a
	// client (the room id length, the message size, the fragments of a
	// message, the allowed hosts and origins, the connection and room
	// limits): a program that sets Options from its own configuration
	// maps a field's name ("MaxMessageSize") to what its users set
	// ("--max-message-size"), as the stateroom command does, so the
	// advice names a setting they can change. A field it does not map,
	// and every field when nil, is named as in Go
	// ("Options.MaxMessageSize").
	OptionNames map[string]string

	// AllowedHosts, when set, lists the host names the server answers to,
	// against DNS rebinding: a page on an attacker's domain that resolves
	// to this server's address sends Host and Origin with the attacker's
	// name, so the same-origin check alone accepts it. A request whose
	// Host header (port ignored) matches no entry gets 421 Misdirected
	// Request on every route but /status (load balancers' health checks
	// often use an IP). Entries are host names or IP addresses
	// ("app.example.com", "localhost", "127.0.0.1", "::1"), or patterns
	// with one leading wildcard label ("*.example.com", which does not
	// match example.com itself). When set, the server's own origin is
	// accepted even when AllowedOrigins is set. Empty (the default)
	// answers any Host.
	AllowedHosts []string
}

// withDefaults returns a copy of o with every zero field set to its default,
// or an error naming the first field it cannot use.
func (o Options) withDefaults() (Options, error) {
	// cmp.Or keeps a field the caller set and fills a zero one.
	o.RoomGracePeriod = cmp.Or(o.RoomGracePeriod, DefaultRoomGracePeriod)
	o.HeartbeatInterval = cmp.Or(o.HeartbeatInterval, DefaultHeartbeatInterval)
	o.HeartbeatTimeout = cmp.Or(o.HeartbeatTimeout, DefaultHeartbeatTimeout)
	o.WriteTimeout = cmp.Or(o.WriteTimeout, DefaultWriteTimeout)
	o.MaxMessageSize = cmp.Or(o.MaxMessageSize, DefaultMaxMessageSize)
	o.SendQueueBytes = cmp.Or(o.SendQueueBytes, DefaultSendQueueBytes)
	o.MaxRoomIDLength = cmp.Or(o.MaxRoomIDLength, DefaultMaxRoomIDLength)
	o.DefaultRoom = cmp.Or(o.DefaultRoom, DefaultRoom)
	o.Logger = cmp.Or(o.Logger, slog.Default())
	o.MetricsPath = cmp.Or(o.MetricsPath, DefaultMetricsPath)
	o.HandshakeTimeout = cmp.Or(o.HandshakeTimeout, DefaultHandshakeTimeout)
	o.MaxConnections = cmp.Or(o.MaxConnections, DefaultMaxConnections)
	o.MaxConnectionsPerIP = cmp.Or(o.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	o.MaxRooms = cmp.Or(o.MaxRooms, DefaultMaxRooms)
	o.MaxClientsPerRoom = cmp.Or(o.MaxClientsPerRoom, DefaultMaxClientsPerRoom)
	o.MessageRate = cmp.Or(o.MessageRate, DefaultMessageRate)
	o.MaxMessageFragments = cmp.Or(o.MaxMessageFragments, DefaultMaxMessageFragments)
	o.MaxRoomsCreatedPerIP = cmp.Or(o.MaxRoomsCreatedPerIP, DefaultMaxRoomsCreatedPerIP)
	o.CheckpointInterval = cmp.Or(o.CheckpointInterval, DefaultCheckpointInterval)
	o.HibernateAfter = cmp.Or(o.HibernateAfter, DefaultHibernateAfter)
	if o.MessageBurst == 0 {
		o.MessageBurst = max(DefaultMessageBurst, int(o.MessageRate))
	}
	o.AllowedOrigins = slices.Clone(o.AllowedOrigins)
	o.AllowedHosts = slices.Clone(o.AllowedHosts)
	o.OptionNames = maps.Clone(o.OptionNames)

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
		{"HandshakeTimeout", o.HandshakeTimeout},
		{"CheckpointInterval", o.CheckpointInterval},
	} {
		if d.v < 0 {
			return o, invalid("%s is %v; use a positive duration, or 0 for the default", d.name, d.v)
		}
	}
	if o.HibernateAfter < 0 && o.HibernateAfter != NeverHibernate {
		return o, invalid("HibernateAfter is %v; use a positive duration, 0 for the default (5m), or NeverHibernate", o.HibernateAfter)
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
		{"MaxMessageFragments", int64(o.MaxMessageFragments)},
	} {
		if n.v < 0 {
			return o, invalid("%s is %d; use a positive size, or 0 for the default", n.name, n.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"MaxConnections", o.MaxConnections},
		{"MaxConnectionsPerIP", o.MaxConnectionsPerIP},
		{"MaxRooms", o.MaxRooms},
		{"MaxClientsPerRoom", o.MaxClientsPerRoom},
		{"MaxRoomsCreatedPerIP", o.MaxRoomsCreatedPerIP},
	} {
		if n.v < 0 && n.v != NoLimit {
			return o, invalid("%s is %d; use a positive count, 0 for the default, or NoLimit (-1) for none", n.name, n.v)
		}
	}
	if o.MessageRate < 0 && o.MessageRate != NoLimit || math.IsNaN(o.MessageRate) || math.IsInf(o.MessageRate, 0) {
		return o, invalid("MessageRate is %v; use a positive number of messages per second, 0 for the default (%d), or NoLimit (-1) for none", o.MessageRate, DefaultMessageRate)
	}
	if o.MessageBurst < 0 {
		return o, invalid("MessageBurst is %d; use a positive count, or 0 for the default", o.MessageBurst)
	}
	if o.MessageRateAction != Throttle && o.MessageRateAction != CloseClient {
		return o, invalid("MessageRateAction is %v; use Throttle (the default) or CloseClient", o.MessageRateAction)
	}
	if o.MetricsPath[0] != '/' || strings.ContainsAny(o.MetricsPath, " \t{}") || o.MetricsPath == "/status" || o.MetricsPath == "/ws" || strings.HasPrefix(o.MetricsPath, "/ws/") {
		return o, invalid("MetricsPath is %q; use a path that starts with \"/\", has no spaces or braces and is not taken by another route (/status, /ws), such as %q, or set DisableMetrics", o.MetricsPath, DefaultMetricsPath)
	}
	if o.AdminToken != "" && len(o.AdminToken) < minAdminToken {
		return o, invalid("AdminToken is %d bytes long; use at least %d random bytes (for example: openssl rand -hex 32), or leave it empty to turn the admin API off", len(o.AdminToken), minAdminToken)
	}
	for _, origin := range o.AllowedOrigins {
		if err := checkOriginPattern(origin); err != nil {
			return o, invalid("%s entry %q: %v", o.name("AllowedOrigins"), origin, err)
		}
	}
	for i, host := range o.AllowedHosts {
		h, err := checkHostPattern(host)
		if err != nil {
			return o, invalid("%s entry %q: %v", o.name("AllowedHosts"), host, err)
		}
		o.AllowedHosts[i] = h
	}
	if len(o.DefaultRoom) > o.MaxRoomIDLength {
		return o, invalid("DefaultRoom is %d bytes long, more than MaxRoomIDLength (%d); shorten it or raise the limit", len(o.DefaultRoom), o.MaxRoomIDLength)
	}
	if o.StaticDir != "" && o.StaticFS != nil {
		return o, invalid("both StaticDir (%q) and StaticFS are set; set the one that holds the files served at /", o.StaticDir)
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

// name is how messages name the option field (see OptionNames).
func (o *Options) name(field string) string {
	if n, ok := o.OptionNames[field]; ok && n != "" {
		return n
	}
	return "Options." + field
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
}
