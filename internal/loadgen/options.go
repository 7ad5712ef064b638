package loadgen

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrOptions is wrapped by every error about an invalid [Options] field.
var ErrOptions = errors.New("loadgen: invalid options")

// Options configures a run. The zero value of every field but URL is usable;
// each field states its default. One Options serves all three modes; a
// field says which modes read it.
type Options struct {
	// URL is the server's WebSocket endpoint without the room, such as
	// ws://127.0.0.1:8080/ws; a run appends "/" and a room id. Required.
	URL string

	// Rooms is the number of rooms: fanout and conns spread their
	// connections over this many rooms, churn creates this many. Zero
	// means 1 for fanout and conns and 1000 for churn.
	Rooms int
	// Clients is the number of connections per room (fanout). Zero means
	// 50.
	Clients int
	// Senders is the number of clients per room that send (fanout); every
	// client receives. Zero means 1; at most Clients.
	Senders int
	// Window is how many messages each sender has in flight at most: sent
	// but not yet back at the sender (fanout). Zero means 16.
	Window int
	// Messages is how many messages each sender sends (fanout). Zero means
	// 1000.
	Messages int
	// Size is the size of each bench message in bytes (fanout, churn).
	// Zero means 64; at least 32.
	Size int
	// Conns is the number of idle connections (conns). Zero means 1000.
	Conns int
	// Concurrency is how many connections are being set up at once (all
	// modes), which for churn is the number of rooms in progress at once.
	// Zero means 32.
	Concurrency int

	// Duration bounds the whole run: when it is over, the run stops
	// sending, connecting or holding and reports what it has. Zero means 60
	// seconds.
	Duration time.Duration
	// StallTimeout ends a fanout run early when no frame has been delivered
	// for this long (a server that lost messages leaves senders waiting on
	// their window). Zero means 5 seconds.
	StallTimeout time.Duration
	// Hold is how long conns waits after opening the connections, and
	// again after closing them, before it reads the server's memory, so
	// that the server has settled. Zero means 2 seconds.
	Hold time.Duration

	// ServerPID is the server's process id, for its CPU time and memory
	// from /proc. Zero means the server is not measured.
	ServerPID int
	// RoomPrefix starts every room id of the run, so that runs do not meet
	// each other's rooms. Empty means "bench-" plus the run's start time in
	// nanoseconds.
	RoomPrefix string

	// Progress, when set, is called about every ProgressInterval from the
	// run's monitor goroutine with the run's progress. Nil means no
	// progress reports.
	Progress func(Progress)
	// ProgressInterval is how often Progress is called. Zero means 1
	// second.
	ProgressInterval time.Duration
}

// Progress is a snapshot of a running run.
type Progress struct {
	// Mode is "fanout", "conns" or "churn".
	Mode string
	// Phase is what the run is doing: "connect", "join", "send",
	// "drain", "hold", "close" or "churn".
	Phase string
	// Done and Total count the phase's units: connections, frames or
	// rooms.
	Done, Total int64
	// Elapsed is the time since the run started.
	Elapsed time.Duration
}

// withDefaults returns a copy of o with its defaults filled for mode, or an
// error naming the first invalid field. The caller's copy is not changed.
func (o Options) withDefaults(mode string) (Options, error) {
	if o.URL == "" {
		return o, fmt.Errorf("%w: URL is empty; give the server's WebSocket endpoint, such as ws://127.0.0.1:8080/ws", ErrOptions)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return o, fmt.Errorf("%w: URL %q: %v", ErrOptions, o.URL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return o, fmt.Errorf("%w: URL %q has scheme %q; use ws:// or wss://, such as ws://127.0.0.1:8080/ws", ErrOptions, o.URL, u.Scheme)
	}
	if u.Host == "" {
		return o, fmt.Errorf("%w: URL %q has no host; use the form ws://HOST:PORT/ws", ErrOptions, o.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return o, fmt.Errorf("%w: URL %q has a query or fragment; give the endpoint only, the room id is appended to its path", ErrOptions, o.URL)
	}
	o.URL = strings.TrimSuffix(o.URL, "/")

	defRooms := 1
	if mode == "churn" {
		defRooms = 1000
	}
	ints := []struct {
		name string
		p    *int
		def  int
		min  int
	}{
		{"Rooms", &o.Rooms, defRooms, 1},
		{"Clients", &o.Clients, 50, 1},
		{"Senders", &o.Senders, 1, 1},
		{"Window", &o.Window, 16, 1},
		{"Messages", &o.Messages, 1000, 1},
		{"Size", &o.Size, 64, minMessageSize},
		{"Conns", &o.Conns, 1000, 1},
		{"Concurrency", &o.Concurrency, 32, 1},
		{"ServerPID", &o.ServerPID, 0, 0},
	}
	for _, f := range ints {
		if *f.p == 0 {
			*f.p = f.def
		}
		if *f.p < f.min {
			return o, fmt.Errorf("%w: %s is %d; it must be at least %d (or 0 for the default, %d)", ErrOptions, f.name, *f.p, f.min, f.def)
		}
	}
	if o.Senders > o.Clients {
		return o, fmt.Errorf("%w: Senders (%d) is more than Clients (%d); senders are clients of the room, so raise Clients or lower Senders", ErrOptions, o.Senders, o.Clients)
	}
	if mode == "fanout" && o.Rooms*o.Clients > 1_000_000 {
		return o, fmt.Errorf("%w: Rooms x Clients is %d connections; at most 1,000,000", ErrOptions, o.Rooms*o.Clients)
	}
	if o.Size > 1<<20 {
		return o, fmt.Errorf("%w: Size is %d bytes; at most 1 MiB", ErrOptions, o.Size)
	}
	durs := []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"Duration", &o.Duration, 60 * time.Second},
		{"StallTimeout", &o.StallTimeout, 5 * time.Second},
		{"Hold", &o.Hold, 2 * time.Second},
		{"ProgressInterval", &o.ProgressInterval, time.Second},
	}
	for _, f := range durs {
		if *f.p == 0 {
			*f.p = f.def
		}
		if *f.p < 0 {
			return o, fmt.Errorf("%w: %s is %v; it must be positive (or 0 for the default, %v)", ErrOptions, f.name, *f.p, f.def)
		}
	}
	if o.RoomPrefix == "" {
		o.RoomPrefix = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	return o, nil
}

// roomURL is the URL of room i of the run.
func (o *Options) roomURL(i int) string {
	return o.URL + "/" + url.PathEscape(o.RoomPrefix+"-"+strconv.Itoa(i))
}
