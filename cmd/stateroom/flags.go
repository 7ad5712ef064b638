package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/store"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// LogFlags are the logging flags of the commands that log.
type LogFlags struct {
	// Format is "text" (default) or "json".
	Format string
	// Level is debug, info (default), warn or error.
	Level string
}

func (f *LogFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Format, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.Level, "log-level", "info", "log level: debug, info, warn or error")
}

// logger builds the logger the flags ask for, writing to w.
func (f *LogFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not a level; use debug, info, warn or error", f.Level)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.Format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not a format; use text or json", f.Format)
}

// ServerFlags are the flags of the commands that run a server (serve and
// dev): where to listen, the room server's settings and the WebAssembly
// host's sandbox.
type ServerFlags struct {
	// Port to listen on (-p/--port, default 8080; 0 picks a free port).
	Port int
	// Host is the address to listen on (--host, default 127.0.0.1).
	Host string
	// HeartbeatInterval is the ping interval in seconds
	// (-i/--heartbeat-interval, default 30).
	HeartbeatInterval int
	// HeartbeatTimeout closes a client silent this many seconds
	// (-t/--heartbeat-timeout, default 120).
	HeartbeatTimeout int
	// RoomGrace keeps a room this long after its last client leaves
	// (--room-grace, default 30s; 0 ends it at once; "forever" never).
	RoomGrace graceValue
	// EventBudget bounds one call into the module (--event-budget, default
	// 2s).
	EventBudget time.Duration
	// Trusted runs the module without a budget (--trusted).
	Trusted bool
	// MemoryLimit caps each room's linear memory (--memory-limit, default
	// 64MiB).
	MemoryLimit byteSize
	// CacheDir holds compiled modules between runs (--cache-dir, default
	// the user cache dir).
	CacheDir string
	// NoCache turns the compilation cache off (--no-cache).
	NoCache bool
	// Log holds the logging flags.
	Log LogFlags

	// AllowedOrigins are the browser origins allowed to open a WebSocket
	// (--allowed-origin, repeatable). Empty means same origin only for
	// serve; dev adds its own localhost origins.
	AllowedOrigins []string
	// ClientToken is the secret every client must present
	// (--client-token or $STATEROOM_CLIENT_TOKEN; default none).
	ClientToken string
	// AdminToken turns on the admin API (--admin-token or
	// $STATEROOM_ADMIN_TOKEN; default none: the API is off).
	AdminToken string
	// MetricsPath is where Prometheus metrics are served (--metrics-path,
	// default /metrics).
	MetricsPath string
	// NoMetrics turns the metrics route off (--no-metrics).
	NoMetrics bool
	// HandshakeTimeout bounds the HTTP request and WebSocket handshake
	// (--handshake-timeout, default 10s).
	HandshakeTimeout time.Duration
	// MaxConnections bounds the open WebSocket connections
	// (--max-connections, default 10000; "none" for no limit).
	MaxConnections limitValue
	// MaxConnectionsPerIP bounds the open connections of one client
	// address (--max-connections-per-ip, default 256; "none").
	MaxConnectionsPerIP limitValue
	// TrustForwardedFor takes the client address from X-Forwarded-For
	// (--trust-forwarded-for; only behind a proxy that sets it).
	TrustForwardedFor bool
	// MaxRooms bounds the running rooms (--max-rooms, default 10000;
	// "none").
	MaxRooms limitValue
	// MaxClientsPerRoom bounds the clients of one room
	// (--max-clients-per-room, default 1000; "none").
	MaxClientsPerRoom limitValue
	// MessageRate is the messages per second one client may send
	// (--message-rate, default 100; "none").
	MessageRate limitValue
	// MessageRateAction is what happens to a client over MessageRate
	// (--message-rate-action: throttle, the default, or close).
	MessageRateAction rateActionValue
	// MessageBurst is how many messages a client may send at once above
	// the rate (--message-burst, default 0: 200, or the rate if higher).
	MessageBurst int
	// TLSCert and TLSKey are the PEM certificate and key to serve https and
	// wss with (--tls-cert, --tls-key: both or neither; default neither).
	TLSCert, TLSKey string

	// StateDir holds the rooms' saved state, the file stateFile
	// (--state-dir, default .stateroom in the working directory).
	StateDir string
	// NoState keeps rooms in memory only (--no-state).
	NoState bool
	// CheckpointInterval is the most often a busy room is saved
	// (--checkpoint-interval, default 1s): what a crash can lose.
	CheckpointInterval time.Duration
	// HibernateAfter drops the instance of a room idle this long
	// (--hibernate-after, default 5m; 0 never).
	HibernateAfter time.Duration

	// The abuse limits the server's messages name (see optionFlags).

	// MaxMessageSize is the largest message a client may send
	// (--max-message-size, default 1MiB).
	MaxMessageSize byteSize
	// MaxMessageFragments bounds the frames one message may arrive in
	// (--max-message-fragments, default 1024).
	MaxMessageFragments int
	// MaxRoomIDLength is the longest room id, in bytes
	// (--max-room-id-length, default 256).
	MaxRoomIDLength int
	// MaxRoomsCreatedPerIP bounds the rooms one client address may create
	// per minute (--max-rooms-created-per-ip, default 100; "none").
	MaxRoomsCreatedPerIP limitValue
	// AllowedHosts are the host names the server answers to
	// (--allowed-host, repeatable; default any).
	AllowedHosts []string
	// SendQueueSize bounds what may wait for one client
	// (--send-queue-size, default 4MiB).
	SendQueueSize byteSize
	// WriteTimeout is how long a client may accept nothing of what is
	// written to it (--write-timeout, default 10s).
	WriteTimeout time.Duration

	// metrics is the one registry the server and every module it loads
	// (dev loads one per rebuild) report to, so /metrics shows both; made
	// on first use, nil with --no-metrics.
	metrics *prometheus.Registry
}

// registerer is registry as a prometheus.Registerer: a nil interface, not a
// typed nil, when metrics are off.
func (f *ServerFlags) registerer() prometheus.Registerer {
	if r := f.registry(); r != nil {
		return r
	}
	return nil
}

// registry returns the metrics registry of this command run, with the Go
// and process collectors, or nil when metrics are off.
func (f *ServerFlags) registry() *prometheus.Registry {
	if f.NoMetrics {
		return nil
	}
	if f.metrics == nil {
		f.metrics = prometheus.NewRegistry()
		f.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return f.metrics
}

// The environment variables that may hold the tokens: a flag's value is
// visible to every user of the machine in ps, the environment is not.
const (
	envClientToken = "STATEROOM_CLIENT_TOKEN"
	envAdminToken  = "STATEROOM_ADMIN_TOKEN"
)

func (f *ServerFlags) register(fs *pflag.FlagSet) {
	fs.IntVarP(&f.Port, "port", "p", 8080, "port to listen on (0 picks a free one)")
	fs.StringVar(&f.Host, "host", "127.0.0.1", "address to listen on; 0.0.0.0 to accept connections from other machines")
	fs.IntVarP(&f.HeartbeatInterval, "heartbeat-interval", "i", 30, "seconds between pings to each client")
	fs.IntVarP(&f.HeartbeatTimeout, "heartbeat-timeout", "t", 120, "seconds of silence after which a client is disconnected")
	f.RoomGrace = graceValue(30 * time.Second)
	fs.Var(&f.RoomGrace, "room-grace", `how long a room outlives its last client (e.g. 30s; 0 ends it at once; "forever")`)
	fs.DurationVar(&f.EventBudget, "event-budget", wasmhost.DefaultEventBudget, "time one event may take in the module before its room is ended")
	fs.BoolVar(&f.Trusted, "trusted", false, "trusted module: no event budget (a module that loops forever then blocks its room)")
	f.MemoryLimit = wasmhost.DefaultMemoryLimit
	fs.Var(&f.MemoryLimit, "memory-limit", "linear memory cap of each room's module instance (e.g. 64MiB)")
	fs.StringVar(&f.CacheDir, "cache-dir", "", "directory caching compiled modules (default: the user cache dir)")
	fs.BoolVar(&f.NoCache, "no-cache", false, "compile the module on every start")
	f.Log.register(fs)

	fs.StringArrayVar(&f.AllowedOrigins, "allowed-origin", nil, `browser origin allowed to connect, e.g. https://app.example.com or https://*.example.com (repeatable; default: same origin only, "*" allows any page)`)
	fs.StringVar(&f.ClientToken, "client-token", "", "secret every client must send as ?auth=TOKEN or \"Authorization: Bearer TOKEN\" (or set $"+envClientToken+", which ps does not show)")
	fs.StringVar(&f.AdminToken, "admin-token", "", "turn on the admin API (/admin/rooms) for requests with \"Authorization: Bearer TOKEN\"; at least 16 bytes (or set $"+envAdminToken+")")
	fs.StringVar(&f.MetricsPath, "metrics-path", server.DefaultMetricsPath, "path of the Prometheus metrics")
	fs.BoolVar(&f.NoMetrics, "no-metrics", false, "do not serve the Prometheus metrics")
	fs.DurationVar(&f.HandshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "time a client gets to send its request headers and finish the WebSocket handshake")
	f.MaxConnections = countLimit(server.DefaultMaxConnections)
	fs.Var(&f.MaxConnections, "max-connections", `WebSocket connections open at once; more get 503 ("none" for no limit)`)
	f.MaxConnectionsPerIP = countLimit(server.DefaultMaxConnectionsPerIP)
	fs.Var(&f.MaxConnectionsPerIP, "max-connections-per-ip", `connections open at once from one client address; more get 429 ("none" for no limit)`)
	fs.BoolVar(&f.TrustForwardedFor, "trust-forwarded-for", false, "take the client address from X-Forwarded-For: only behind a proxy that appends it")
	f.MaxRooms = countLimit(server.DefaultMaxRooms)
	fs.Var(&f.MaxRooms, "max-rooms", `rooms running at once; a connection that would create one more gets 503 ("none" for no limit)`)
	f.MaxClientsPerRoom = countLimit(server.DefaultMaxClientsPerRoom)
	fs.Var(&f.MaxClientsPerRoom, "max-clients-per-room", `clients in one room; one more is closed with 1013 "room is full" ("none" for no limit)`)
	f.MessageRate = limitValue{n: server.DefaultMessageRate}
	fs.Var(&f.MessageRate, "message-rate", `messages per second one client may send on average; a faster one is throttled, or closed with 1008 with --message-rate-action close ("none" for no limit)`)
	fs.Var(&f.MessageRateAction, "message-rate-action", "what happens to a client over --message-rate: throttle (its messages are read at the rate; nothing is lost) or close (with 1008)")
	fs.IntVar(&f.MessageBurst, "message-burst", 0, fmt.Sprintf("messages a client may send at once above --message-rate (default %d, or the rate if higher)", server.DefaultMessageBurst))
	fs.StringVar(&f.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve https and wss with; needs --tls-key")
	fs.StringVar(&f.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.StateDir, "state-dir", defaultStateDir, "directory of the rooms' saved state (the file "+stateFile+"), so rooms outlive a restart; one process at a time may use it")
	fs.BoolVar(&f.NoState, "no-state", false, "keep rooms in memory only: their state is lost when the process stops")
	fs.DurationVar(&f.CheckpointInterval, "checkpoint-interval", server.DefaultCheckpointInterval, "most often a room with events is saved: a crash loses at most this much")
	fs.DurationVar(&f.HibernateAfter, "hibernate-after", server.DefaultHibernateAfter, "drop the instance of a room idle this long, keeping its state and clients (0: never)")

	f.MaxMessageSize = server.DefaultMaxMessageSize
	fs.Var(&f.MaxMessageSize, "max-message-size", "largest message a client may send (e.g. 1MiB); a larger one closes the client with 1009")
	fs.IntVar(&f.MaxMessageFragments, "max-message-fragments", server.DefaultMaxMessageFragments, "frames one message may arrive in; more closes the client with 1009 (browsers send one)")
	fs.IntVar(&f.MaxRoomIDLength, "max-room-id-length", server.DefaultMaxRoomIDLength, "longest room id in bytes; a longer one gets 400")
	f.MaxRoomsCreatedPerIP = countLimit(server.DefaultMaxRoomsCreatedPerIP)
	fs.Var(&f.MaxRoomsCreatedPerIP, "max-rooms-created-per-ip", `rooms one client address may create per minute; more get 429 (joining a running room is free; "none" for no limit)`)
	fs.StringArrayVar(&f.AllowedHosts, "allowed-host", nil, "host name the server answers to, against DNS rebinding, e.g. app.example.com, *.example.com or 127.0.0.1 (repeatable; default: any); other hosts get 421")
	f.SendQueueSize = server.DefaultSendQueueBytes
	fs.Var(&f.SendQueueSize, "send-queue-size", "what may wait to be written to one client (e.g. 4MiB); a client whose queue outgrows it is closed with 4000")
	fs.DurationVar(&f.WriteTimeout, "write-timeout", server.DefaultWriteTimeout, "how long a client may accept nothing of what is written to it before it is closed")
}

// optionFlags maps the server options that have a flag to the flag, for
// server.Options.OptionNames: the server's refusals and close reasons then
// tell a command user which flag to change, not which Go field.
var optionFlags = map[string]string{
	"MaxMessageSize":       "--max-message-size",
	"MaxMessageFragments":  "--max-message-fragments",
	"MaxRoomIDLength":      "--max-room-id-length",
	"MaxRoomsCreatedPerIP": "--max-rooms-created-per-ip",
	"AllowedHosts":         "--allowed-host",
	"AllowedOrigins":       "--allowed-origin",
	"MaxConnections":       "--max-connections",
	"MaxConnectionsPerIP":  "--max-connections-per-ip",
	"MaxRooms":             "--max-rooms",
	"SendQueueBytes":       "--send-queue-size",
	"WriteTimeout":         "--write-timeout",
}

// The state a command keeps by default: a bbolt file in a directory of the
// working directory, so that a project's rooms stay with the project and
// two projects never share (or lock each other out of) one file.
const (
	defaultStateDir = ".stateroom"
	stateFile       = "rooms.db"
)

// complete fills the tokens not given by flag from the environment, then
// validates. A flag wins over its variable.
func (f *ServerFlags) complete(fs *pflag.FlagSet) error {
	for _, e := range []struct {
		flag, env string
		v         *string
	}{
		{"client-token", envClientToken, &f.ClientToken},
		{"admin-token", envAdminToken, &f.AdminToken},
	} {
		if !fs.Changed(e.flag) {
			*e.v = os.Getenv(e.env)
		}
	}
	return f.validate()
}

// validate checks the values the flag parser cannot.
func (f *ServerFlags) validate() error {
	switch {
	case f.Port < 0 || f.Port > 65535:
		return fmt.Errorf("--port %d is out of range; use 1-65535, or 0 for a free port", f.Port)
	case f.HeartbeatInterval <= 0:
		return fmt.Errorf("--heartbeat-interval %d must be a positive number of seconds", f.HeartbeatInterval)
	case f.HeartbeatTimeout <= 0:
		return fmt.Errorf("--heartbeat-timeout %d must be a positive number of seconds", f.HeartbeatTimeout)
	case f.HeartbeatTimeout <= f.HeartbeatInterval:
		return fmt.Errorf("--heartbeat-timeout (%ds) must be longer than --heartbeat-interval (%ds), or every client times out between pings", f.HeartbeatTimeout, f.HeartbeatInterval)
	case f.EventBudget <= 0 && !f.Trusted:
		return fmt.Errorf("--event-budget %v must be positive; use --trusted to run without a budget", f.EventBudget)
	case f.MemoryLimit <= 0 || f.MemoryLimit > wasmhost.MaxMemoryLimit:
		return fmt.Errorf("--memory-limit %s is out of range; use a size between 64KiB and 4GiB", f.MemoryLimit.String())
	case f.TLSCert != "" && f.TLSKey == "":
		return fmt.Errorf("--tls-cert %s needs --tls-key, the certificate's private key (PEM); give both, or neither to serve plain http and ws", f.TLSCert)
	case f.TLSKey != "" && f.TLSCert == "":
		return fmt.Errorf("--tls-key %s needs --tls-cert, the certificate (PEM) it belongs to; give both, or neither to serve plain http and ws", f.TLSKey)
	case f.HandshakeTimeout <= 0:
		return fmt.Errorf("--handshake-timeout %v must be a positive duration, such as 10s", f.HandshakeTimeout)
	case f.MessageBurst < 0:
		return fmt.Errorf("--message-burst %d must be a positive number of messages, or 0 for the default", f.MessageBurst)
	case f.CheckpointInterval <= 0:
		return fmt.Errorf("--checkpoint-interval %v must be a positive duration, such as 1s", f.CheckpointInterval)
	case f.HibernateAfter < 0:
		return fmt.Errorf("--hibernate-after %v must be a positive duration, or 0 to never hibernate", f.HibernateAfter)
	case f.NoState && f.StateDir != defaultStateDir:
		return fmt.Errorf("--no-state and --state-dir %s contradict each other: give --state-dir to keep the rooms' state there, or --no-state to keep it nowhere", f.StateDir)
	case !f.NoState && f.StateDir == "":
		return fmt.Errorf("--state-dir is empty; give a directory, or --no-state to keep rooms in memory only")
	case f.MaxMessageSize <= 0 || f.MaxMessageSize > maxHeldSize:
		return fmt.Errorf("--max-message-size %s is out of range; use a size between 1B and %s, such as 1MiB (the default)", f.MaxMessageSize.String(), "1GiB")
	case f.MaxMessageFragments <= 0:
		return fmt.Errorf("--max-message-fragments %d must be a positive number of frames, such as %d (the default; browsers send one per message)", f.MaxMessageFragments, server.DefaultMaxMessageFragments)
	case f.MaxRoomIDLength < len(server.DefaultRoom):
		return fmt.Errorf("--max-room-id-length %d is too short; use at least %d bytes (the default room's id, %q), such as %d (the default)", f.MaxRoomIDLength, len(server.DefaultRoom), server.DefaultRoom, server.DefaultMaxRoomIDLength)
	case f.SendQueueSize <= 0 || f.SendQueueSize > maxHeldSize:
		return fmt.Errorf("--send-queue-size %s is out of range; use a size between 1B and %s, such as 4MiB (the default)", f.SendQueueSize.String(), "1GiB")
	case f.WriteTimeout <= 0:
		return fmt.Errorf("--write-timeout %v must be a positive duration, such as 10s", f.WriteTimeout)
	case f.AdminToken != "" && len(f.AdminToken) < 16:
		// Checked here too, not only by server.New, so the advice names
		// the flag and comes before a build.
		return fmt.Errorf("--admin-token is %d bytes long; use at least 16 random bytes (for example: openssl rand -hex 32)", len(f.AdminToken))
	}
	return nil
}

// maxHeldSize bounds --max-message-size and --send-queue-size: a message
// and a queue are held in memory, per client. Error messages spell it
// "1GiB".
const maxHeldSize = byteSize(1 << 30)

// serverOptions translates the flags to the room server's options.
func (f *ServerFlags) serverOptions(logger *slog.Logger, staticDir, clientDir string) server.Options {
	return server.Options{
		RoomGracePeriod:   f.RoomGrace.serverValue(),
		HeartbeatInterval: time.Duration(f.HeartbeatInterval) * time.Second,
		HeartbeatTimeout:  time.Duration(f.HeartbeatTimeout) * time.Second,
		StaticDir:         staticDir,
		ClientDir:         clientDir,
		Logger:            logger,

		AllowedOrigins:      f.AllowedOrigins,
		ClientToken:         f.ClientToken,
		AdminToken:          f.AdminToken,
		MetricsPath:         f.MetricsPath,
		DisableMetrics:      f.NoMetrics,
		Metrics:             f.registerer(),
		HandshakeTimeout:    f.HandshakeTimeout,
		MaxConnections:      f.MaxConnections.count(),
		MaxConnectionsPerIP: f.MaxConnectionsPerIP.count(),
		TrustForwardedFor:   f.TrustForwardedFor,
		MaxRooms:            f.MaxRooms.count(),
		MaxClientsPerRoom:   f.MaxClientsPerRoom.count(),
		MessageRate:         f.MessageRate.n,
		MessageRateAction:   server.RateLimitAction(f.MessageRateAction),
		MessageBurst:        f.MessageBurst,
		CheckpointInterval:  f.CheckpointInterval,
		HibernateAfter:      f.hibernateAfter(),

		MaxMessageSize:       int64(f.MaxMessageSize),
		MaxMessageFragments:  f.MaxMessageFragments,
		MaxRoomIDLength:      f.MaxRoomIDLength,
		MaxRoomsCreatedPerIP: f.MaxRoomsCreatedPerIP.count(),
		AllowedHosts:         f.AllowedHosts,
		SendQueueBytes:       int(f.SendQueueSize),
		WriteTimeout:         f.WriteTimeout,
		OptionNames:          optionFlags,
	}
}

// hibernateAfter maps --hibernate-after to server.Options.HibernateAfter,
// whose zero means "the default" rather than "never".
func (f *ServerFlags) hibernateAfter() time.Duration {
	if f.HibernateAfter == 0 {
		return server.NeverHibernate
	}
	return f.HibernateAfter
}

// statePath is the state file the flags name, or "" with --no-state.
func (f *ServerFlags) statePath() string {
	if f.NoState {
		return ""
	}
	return filepath.Join(f.StateDir, stateFile)
}

// openStore opens the state file, or returns nil with --no-state. Its
// errors are the store's, which name the file and what to do (stop the
// other process holding it, or pass another --state-dir); the caller
// returns them before the ready line.
func (f *ServerFlags) openStore() (*store.Bolt, error) {
	path := f.statePath()
	if path == "" {
		return nil, nil
	}
	return store.Open(path, store.BoltOptions{})
}

// stateNote ends the ready line: where the rooms' state goes.
func (f *ServerFlags) stateNote() string {
	if path := f.statePath(); path != "" {
		return "; rooms saved to " + rel(path)
	}
	return "; rooms in memory only (--no-state)"
}

// hostOptions translates the flags to the WebAssembly host's options.
func (f *ServerFlags) hostOptions(logger *slog.Logger) wasmhost.Options {
	o := wasmhost.Options{
		EventBudget:  f.EventBudget,
		MemoryLimit:  int64(f.MemoryLimit),
		CacheDir:     f.CacheDir,
		DisableCache: f.NoCache,
		Logger:       logger,
		Metrics:      f.registerer(),
	}
	if f.Trusted {
		o.EventBudget = wasmhost.NoBudget
	}
	return o
}

// graceValue is the --room-grace flag: a duration, 0 for "end the room when
// its last client leaves", or "forever".
type graceValue time.Duration

// graceForever marks --room-grace forever.
const graceForever = graceValue(-1)

func (g *graceValue) String() string {
	if *g == graceForever {
		return "forever"
	}
	return time.Duration(*g).String()
}

func (g *graceValue) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "forever", "never":
		*g = graceForever
		return nil
	case "0":
		*g = 0
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a grace period; use a duration such as 30s or 5m, 0, or forever", v)
	}
	*g = graceValue(d)
	return nil
}

func (g *graceValue) Type() string { return "duration" }

// serverValue maps the flag to server.Options.RoomGracePeriod, whose zero
// means "the default" rather than "none".
func (g graceValue) serverValue() time.Duration {
	switch g {
	case graceForever:
		return server.KeepRoomsForever
	case 0:
		return server.EndRoomsImmediately
	}
	return time.Duration(g)
}

// rateActionValue is the --message-rate-action flag: what the server does
// with a client over --message-rate. Its zero value is the server's
// default, throttle.
type rateActionValue server.RateLimitAction

// String returns "throttle" or "close".
func (a *rateActionValue) String() string { return server.RateLimitAction(*a).String() }

// Set parses "throttle" or "close", in any case.
func (a *rateActionValue) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "throttle":
		*a = rateActionValue(server.Throttle)
	case "close":
		*a = rateActionValue(server.CloseClient)
	default:
		return fmt.Errorf("%q is not an action; use throttle or close", v)
	}
	return nil
}

// Type names the value in help output.
func (a *rateActionValue) Type() string { return "action" }

// limitValue is a limit flag (--max-connections, --message-rate, ...): a
// positive number, or "none" for server.NoLimit.
type limitValue struct {
	n       float64 // server.NoLimit for none
	integer bool    // a count of things, not a rate
}

// countLimit is a limitValue that counts things, set to def.
func countLimit(def int) limitValue { return limitValue{n: float64(def), integer: true} }

func (l *limitValue) String() string {
	if l.n == server.NoLimit {
		return "none"
	}
	return strconv.FormatFloat(l.n, 'f', -1, 64)
}

func (l *limitValue) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "none", "off", "unlimited":
		l.n = server.NoLimit
		return nil
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	switch {
	case err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n):
		return fmt.Errorf("%q is not a limit; use a positive %s, or none for no limit", v, l.Type())
	case l.integer && (n != math.Trunc(n) || n > math.MaxInt32):
		return fmt.Errorf("%q is not a limit; use a positive whole number (at most %d), or none for no limit", v, math.MaxInt32)
	}
	l.n = n
	return nil
}

func (l *limitValue) Type() string {
	if l.integer {
		return "count"
	}
	return "rate"
}

// count is the limit as a server.Options count field.
func (l limitValue) count() int { return int(l.n) }
