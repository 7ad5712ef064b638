package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stateroom-go/stateroom/server"
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
}

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
	}
	return nil
}

// serverOptions translates the flags to the room server's options.
func (f *ServerFlags) serverOptions(logger *slog.Logger, staticDir, clientDir string) server.Options {
	return server.Options{
		RoomGracePeriod:   f.RoomGrace.serverValue(),
		HeartbeatInterval: time.Duration(f.HeartbeatInterval) * time.Second,
		HeartbeatTimeout:  time.Duration(f.HeartbeatTimeout) * time.Second,
		StaticDir:         staticDir,
		ClientDir:         clientDir,
		Logger:            logger,
	}
}

// hostOptions translates the flags to the WebAssembly host's options.
func (f *ServerFlags) hostOptions(logger *slog.Logger) wasmhost.Options {
	o := wasmhost.Options{
		EventBudget:  f.EventBudget,
		MemoryLimit:  int64(f.MemoryLimit),
		CacheDir:     f.CacheDir,
		DisableCache: f.NoCache,
		Logger:       logger,
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
