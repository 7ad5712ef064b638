package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/internal/config"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// errRan stops a command after flag parsing: the tests check the options
// runF receives without doing the work.
var errRan = errors.New("ran")

// parse runs cmd with args and returns the error (errRan when runF ran).
func parse(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(context.Background())
}

func TestServeFlagsDefaults(t *testing.T) {
	var got *ServeOptions
	err := parse(t, NewCmdServe(func(_ context.Context, o *ServeOptions) error { got = o; return errRan }), "mod.wasm")
	if !errors.Is(err, errRan) {
		t.Fatalf("err = %v", err)
	}
	f := got.Server
	if got.Target != "mod.wasm" || f.Port != 8080 || f.Host != "127.0.0.1" ||
		f.HeartbeatInterval != 30 || f.HeartbeatTimeout != 120 ||
		f.EventBudget != wasmhost.DefaultEventBudget || f.Trusted ||
		f.MemoryLimit != wasmhost.DefaultMemoryLimit || f.NoCache || f.CacheDir != "" ||
		f.Log.Format != "text" || f.Log.Level != "info" {
		t.Fatalf("defaults: %+v", got)
	}
	so := f.serverOptions(nil, "", "")
	if so.RoomGracePeriod != 30*time.Second || so.HeartbeatInterval != 30*time.Second || so.HeartbeatTimeout != 120*time.Second {
		t.Fatalf("server options: %+v", so)
	}
	// Rooms persist by default, to .stateroom/rooms.db in the working
	// directory, checkpointed every second, hibernating after 5 minutes.
	if f.NoState || f.StateDir != ".stateroom" || f.statePath() != filepath.Join(".stateroom", "rooms.db") ||
		so.CheckpointInterval != time.Second || so.HibernateAfter != 5*time.Minute {
		t.Fatalf("state defaults: no-state %v, dir %q, path %q, checkpoint %v, hibernate %v",
			f.NoState, f.StateDir, f.statePath(), so.CheckpointInterval, so.HibernateAfter)
	}
	if ho := f.hostOptions(nil); ho.EventBudget != wasmhost.DefaultEventBudget || ho.MemoryLimit != 64<<20 || ho.DisableCache {
		t.Fatalf("host options: %+v", ho)
	}
}

func TestServeFlagsSet(t *testing.T) {
	var got *ServeOptions
	err := parse(t, NewCmdServe(func(_ context.Context, o *ServeOptions) error { got = o; return errRan }),
		"dir", "-p", "9000", "--host", "0.0.0.0", "-i", "5", "-t", "20", "--room-grace", "forever",
		"--trusted", "--memory-limit", "32MiB", "--cache-dir", "/tmp/c", "--no-cache",
		"--log-format", "json", "--log-level", "debug", "--static", "www")
	if !errors.Is(err, errRan) {
		t.Fatalf("err = %v", err)
	}
	f := got.Server
	if f.Port != 9000 || f.Host != "0.0.0.0" || f.HeartbeatInterval != 5 || f.HeartbeatTimeout != 20 ||
		f.MemoryLimit != 32<<20 || f.CacheDir != "/tmp/c" || !f.NoCache || got.Static != "www" ||
		f.Log.Format != "json" || f.Log.Level != "debug" {
		t.Fatalf("flags: %+v", got)
	}
	if so := f.serverOptions(nil, "s", "c"); so.RoomGracePeriod != server.KeepRoomsForever || so.HeartbeatInterval != 5*time.Second ||
		so.StaticDir != "s" || so.ClientDir != "c" {
		t.Fatalf("server options: %+v", so)
	}
	if ho := f.hostOptions(nil); ho.EventBudget != wasmhost.NoBudget || !ho.DisableCache || ho.CacheDir != "/tmp/c" {
		t.Fatalf("host options: %+v", ho)
	}
}

func TestStateFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		path       string
		checkpoint time.Duration
		hibernate  time.Duration
	}{
		{[]string{"--state-dir", "/var/lib/sr"}, "/var/lib/sr/rooms.db", time.Second, 5 * time.Minute},
		{[]string{"--no-state"}, "", time.Second, 5 * time.Minute},
		{[]string{"--checkpoint-interval", "250ms", "--hibernate-after", "1h"}, ".stateroom/rooms.db", 250 * time.Millisecond, time.Hour},
		// 0 turns hibernation off: server.Options would read 0 as the default.
		{[]string{"--hibernate-after", "0"}, ".stateroom/rooms.db", time.Second, server.NeverHibernate},
	} {
		for _, newCmd := range []func() *cobra.Command{
			func() *cobra.Command {
				return NewCmdServe(func(_ context.Context, o *ServeOptions) error { return ranWith(&o.Server) })
			},
			func() *cobra.Command {
				return NewCmdDev(func(_ context.Context, o *DevOptions) error { return ranWith(&o.Server) })
			},
		} {
			cmd := newCmd()
			args := tc.args
			if cmd.Name() == "serve" {
				args = append([]string{"m.wasm"}, args...)
			}
			var re *ranError
			if err := parse(t, cmd, args...); !errors.As(err, &re) {
				t.Fatalf("%s %q: err = %v", cmd.Name(), args, err)
			}
			f := re.flags
			so := f.serverOptions(nil, "", "")
			if f.statePath() != filepath.FromSlash(tc.path) || so.CheckpointInterval != tc.checkpoint || so.HibernateAfter != tc.hibernate {
				t.Errorf("%s %q: path %q, checkpoint %v, hibernate %v; want %q, %v, %v",
					cmd.Name(), args, f.statePath(), so.CheckpointInterval, so.HibernateAfter, tc.path, tc.checkpoint, tc.hibernate)
			}
		}
	}
	// --no-state opens no store.
	f := &ServerFlags{NoState: true}
	if st, err := f.openStore(); st != nil || err != nil {
		t.Errorf("openStore with --no-state: %v, %v; want nothing", st, err)
	}
}

// ranError carries the flags runF got out of a command.
type ranError struct{ flags *ServerFlags }

func (*ranError) Error() string { return "ran" }

func ranWith(f *ServerFlags) error { return &ranError{flags: f} }

func TestRoomGraceValues(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
	}{
		{"0", server.EndRoomsImmediately},
		{"0s", server.EndRoomsImmediately},
		{"5m", 5 * time.Minute},
		{"never", server.KeepRoomsForever},
	} {
		var got *ServeOptions
		err := parse(t, NewCmdServe(func(_ context.Context, o *ServeOptions) error { got = o; return errRan }), "m.wasm", "--room-grace", tc.arg)
		if !errors.Is(err, errRan) {
			t.Fatalf("%s: err = %v", tc.arg, err)
		}
		if v := got.Server.RoomGrace.serverValue(); v != tc.want {
			t.Errorf("--room-grace %s: server value %v, want %v", tc.arg, v, tc.want)
		}
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "needs a module file or a directory"},
		{[]string{"a", "b"}, "needs a module file or a directory"},
		{[]string{"m.wasm", "-p", "70000"}, "out of range"},
		{[]string{"m.wasm", "-i", "0"}, "--heartbeat-interval 0 must be a positive"},
		{[]string{"m.wasm", "-i", "30", "-t", "30"}, "must be longer than --heartbeat-interval"},
		{[]string{"m.wasm", "--room-grace", "soon"}, "not a grace period"},
		{[]string{"m.wasm", "--room-grace", "-5s"}, "not a grace period"},
		{[]string{"m.wasm", "--memory-limit", "lots"}, "must start with a number"},
		{[]string{"m.wasm", "--memory-limit", "8TiB"}, "unknown unit"},
		{[]string{"m.wasm", "--memory-limit", "8GiB"}, "--memory-limit 8GiB is out of range"},
		{[]string{"m.wasm", "--event-budget", "0s"}, "use --trusted"},
		{[]string{"m.wasm", "--port", "x"}, "invalid argument"},
		{[]string{"m.wasm", "--checkpoint-interval", "0s"}, "--checkpoint-interval 0s must be a positive duration"},
		{[]string{"m.wasm", "--checkpoint-interval", "soon"}, "invalid argument"},
		{[]string{"m.wasm", "--hibernate-after", "-1m"}, "--hibernate-after -1m0s must be a positive duration, or 0"},
		{[]string{"m.wasm", "--no-state", "--state-dir", "st"}, "--no-state and --state-dir st contradict"},
		{[]string{"m.wasm", "--state-dir", ""}, "--state-dir is empty"},
	} {
		ran := false
		err := parse(t, NewCmdServe(func(context.Context, *ServeOptions) error { ran = true; return nil }), tc.args...)
		if err == nil || ran || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %q: ran=%v err=%v; want an error containing %q", tc.args, ran, err, tc.want)
		}
	}
}

func TestLogFlags(t *testing.T) {
	for _, tc := range []struct {
		f    LogFlags
		want string // "" for no error
	}{
		{LogFlags{"text", "info"}, ""},
		{LogFlags{"JSON", "warn"}, ""},
		{LogFlags{"xml", "info"}, "--log-format \"xml\" is not a format"},
		{LogFlags{"text", "loud"}, "--log-level \"loud\" is not a level"},
	} {
		_, err := tc.f.logger(&bytes.Buffer{})
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err = %v, want %q", tc.f, err, tc.want)
		}
	}
}

func TestDevFlags(t *testing.T) {
	var got *DevOptions
	err := parse(t, NewCmdDev(func(_ context.Context, o *DevOptions) error { got = o; return errRan }))
	if !errors.Is(err, errRan) {
		t.Fatalf("err = %v", err)
	}
	if got.Dir != "." || got.Server.Host != "127.0.0.1" || got.Server.Port != 8080 || got.Debounce != defaultDebounce {
		t.Fatalf("dev defaults: %+v", got)
	}
	err = parse(t, NewCmdDev(func(_ context.Context, o *DevOptions) error { got = o; return errRan }), "svc", "-p", "9001", "--debounce", "1s")
	if !errors.Is(err, errRan) || got.Dir != "svc" || got.Server.Port != 9001 || got.Debounce != time.Second {
		t.Fatalf("dev svc: err=%v %+v", err, got)
	}
	if err := parse(t, NewCmdDev(nil), "a", "b"); err == nil || !strings.Contains(err.Error(), "takes at most one directory") {
		t.Fatalf("two dirs: err = %v", err)
	}
	if err := parse(t, NewCmdDev(nil), "--debounce", "0s"); err == nil || !strings.Contains(err.Error(), "--debounce 0s must be positive") {
		t.Fatalf("zero debounce: err = %v", err)
	}
}

func TestBuildAndNewFlags(t *testing.T) {
	var b *BuildOptions
	if err := parse(t, NewCmdBuild(func(_ context.Context, o *BuildOptions) error { b = o; return errRan })); !errors.Is(err, errRan) || b.Dir != "." {
		t.Fatalf("build: err=%v %+v", err, b)
	}
	if err := parse(t, NewCmdBuild(func(_ context.Context, o *BuildOptions) error { b = o; return errRan }), "x/y"); !errors.Is(err, errRan) || b.Dir != "x/y" {
		t.Fatalf("build x/y: err=%v %+v", err, b)
	}
	var n *NewOptions
	err := parse(t, NewCmdNew(func(_ context.Context, o *NewOptions) error { n = o; return errRan }), "svc", "--module", "example.com/a/svc", "--framework", "/src")
	if !errors.Is(err, errRan) || n.Dir != "svc" || n.Module != "example.com/a/svc" || n.Framework != "/src" {
		t.Fatalf("new: err=%v %+v", err, n)
	}
	if err := parse(t, NewCmdNew(nil)); err == nil || !strings.Contains(err.Error(), "needs the name of the directory") {
		t.Fatalf("new without name: err = %v", err)
	}
}

func TestRootHasEveryCommand(t *testing.T) {
	root := NewCmdRoot()
	for _, name := range []string{"serve", "build", "dev", "new", "version", "bench"} {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name {
			t.Errorf("command %s: %v", name, err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"65536", 65536}, {"64KiB", 64 << 10}, {"64k", 64 << 10}, {"64 MB", 64 << 20},
		{"1GiB", 1 << 30}, {"4G", 4 << 30}, {"12b", 12},
	} {
		got, err := parseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1XB", "99999999999999999999", "9999999999999GiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", in)
		}
	}
	s := byteSize(64 << 20)
	if s.String() != "64MiB" {
		t.Errorf("String = %s", s.String())
	}
}

// FuzzParseByteSize checks that no input panics and that a size that
// parses prints back to the same value. Seeds: testdata/fuzz.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1", "4GiB", " 7 k ", "9223372036854775807", "8589934591G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := parseByteSize(in)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseByteSize(%q) = %d", in, n)
		}
		s := byteSize(n)
		back, err := parseByteSize(s.String())
		if err != nil || back != n {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", in, n, s.String(), back, err)
		}
	})
}

// TestLimitFlags checks the limit flags' defaults (the server's) and their
// way into server.Options, serve's and dev's alike.
func TestLimitFlags(t *testing.T) {
	t.Setenv(envClientToken, "")
	t.Setenv(envAdminToken, "")
	so := parseServe(t, "m.wasm").Server.serverOptions(nil, "", "")
	if so.MaxMessageSize != server.DefaultMaxMessageSize || so.MaxMessageFragments != server.DefaultMaxMessageFragments ||
		so.MaxRoomIDLength != server.DefaultMaxRoomIDLength || so.MaxRoomsCreatedPerIP != server.DefaultMaxRoomsCreatedPerIP ||
		so.AllowedHosts != nil || so.SendQueueBytes != server.DefaultSendQueueBytes || so.WriteTimeout != server.DefaultWriteTimeout {
		t.Fatalf("defaults: %+v", so)
	}
	args := []string{"--max-message-size", "64KiB", "--max-message-fragments", "8", "--max-room-id-length", "32",
		"--max-rooms-created-per-ip", "none", "--allowed-host", "app.example", "--allowed-host", "*.b.example",
		"--send-queue-size", "1MiB", "--write-timeout", "3s"}
	check := func(cmd string, so server.Options) {
		t.Helper()
		if so.MaxMessageSize != 64<<10 || so.MaxMessageFragments != 8 || so.MaxRoomIDLength != 32 ||
			so.MaxRoomsCreatedPerIP != server.NoLimit || !slices.Equal(so.AllowedHosts, []string{"app.example", "*.b.example"}) ||
			so.SendQueueBytes != 1<<20 || so.WriteTimeout != 3*time.Second || so.OptionNames["MaxMessageSize"] != "--max-message-size" {
			t.Errorf("%s: server options: %+v", cmd, so)
		}
	}
	check("serve", parseServe(t, append([]string{"m.wasm"}, args...)...).Server.serverOptions(nil, "", ""))
	var d *DevOptions
	if err := parse(t, NewCmdDev(func(_ context.Context, o *DevOptions) error { d = o; return errRan }), args...); !errors.Is(err, errRan) {
		t.Fatalf("dev: %v", err)
	}
	check("dev", d.Server.serverOptions(nil, "", ""))
	// Every flag named for the server's messages exists.
	fs := NewCmdServe(nil).Flags()
	for field, flag := range optionFlags {
		if fs.Lookup(strings.TrimPrefix(flag, "--")) == nil {
			t.Errorf("optionFlags names %s for %s, but serve has no such flag", flag, field)
		}
	}
}

func TestLimitFlagErrors(t *testing.T) {
	t.Setenv(envClientToken, "")
	t.Setenv(envAdminToken, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-message-size", "0"}, "--max-message-size 0 is out of range; use a size between 1B and 1GiB, such as 1MiB"},
		{[]string{"--max-message-size", "2GiB"}, "--max-message-size 2GiB is out of range"},
		{[]string{"--max-message-size", "big"}, "must start with a number"},
		{[]string{"--max-message-fragments", "0"}, "--max-message-fragments 0 must be a positive number of frames, such as 1024"},
		{[]string{"--max-room-id-length", "3"}, `--max-room-id-length 3 is too short; use at least 7 bytes (the default room's id, "default")`},
		{[]string{"--max-rooms-created-per-ip", "0"}, `"0" is not a limit; use a positive count, or none`},
		{[]string{"--send-queue-size", "0"}, "--send-queue-size 0 is out of range"},
		{[]string{"--write-timeout", "0s"}, "--write-timeout 0s must be a positive duration"},
	} {
		ran := false
		err := parse(t, NewCmdServe(func(context.Context, *ServeOptions) error { ran = true; return nil }), append([]string{"m.wasm"}, tc.args...)...)
		if err == nil || ran || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %q: ran=%v err=%v; want an error containing %q", tc.args, ran, err, tc.want)
		}
	}
	// A host pattern only the server can judge: its error names the flag.
	so := parseServe(t, "m.wasm", "--allowed-host", "http://app.example").Server.serverOptions(nil, "", "")
	so.DisableMetrics = true
	if _, err := server.New(stateroom.New(func(string) *stateroom.BaseService { return &stateroom.BaseService{} }), so); err == nil || !strings.Contains(err.Error(), `--allowed-host entry "http://app.example"`) {
		t.Errorf("--allowed-host http://app.example: err = %v, want one naming the flag", err)
	}
}

// TestLimitMessagesNameFlags runs a server with the options the flags
// give and checks that what it tells a client over a limit names the flag
// to change, not the Go field.
func TestLimitMessagesNameFlags(t *testing.T) {
	t.Setenv(envClientToken, "")
	t.Setenv(envAdminToken, "")
	f := parseServe(t, "m.wasm", "--no-state", "--no-metrics", "--max-room-id-length", "8", "--max-message-size", "1KiB",
		"--max-rooms-created-per-ip", "1", "--allowed-host", "127.0.0.1").Server
	srv, err := server.New(stateroom.New(func(string) *stateroom.BaseService { return &stateroom.BaseService{} }), f.serverOptions(slog.New(slog.NewTextHandler(io.Discard, nil)), "", ""))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	handshake := func(path, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		path, host string
		status     int
		flag       string
	}{
		{"/ws/much-too-long", "", http.StatusBadRequest, "--max-room-id-length"},
		{"/ws/r", "rebound.example", http.StatusMisdirectedRequest, "--allowed-host"},
	} {
		if code, body := handshake(tc.path, tc.host); code != tc.status || !strings.Contains(body, tc.flag) {
			t.Errorf("GET %s (Host %q): %d %q, want %d naming %s", tc.path, tc.host, code, body, tc.status, tc.flag)
		}
	}

	// The one room this address may create, then a message over the size.
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http")
	c, err := tryDial(t, wsURL+"/ws/first", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := handshake("/ws/second", ""); code != http.StatusTooManyRequests || !strings.Contains(body, "--max-rooms-created-per-ip") {
		t.Errorf("a second room: %d %q, want 429 naming --max-rooms-created-per-ip", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Send(ctx, stateroom.Binary(make([]byte, 2<<10))); err != nil {
		t.Fatal(err)
	}
	p, err := c.next()
	ce, ok := errors.AsType[*client.CloseError](err)
	if !ok || ce.Code != stateroom.CloseMessageTooBig || !strings.Contains(ce.Reason, "--max-message-size") {
		t.Errorf("a 2 KiB message: %v (message %.40q), want 1009 naming --max-message-size", err, p.Data)
	}
}

// TestLimitsFromProjectFile: the [limits] table of stateroom.toml sets the
// limit flags (config.ApplyFlags) the command line left alone, through
// the flags' own parsers, and a flag given on the command line wins.
func TestLimitsFromProjectFile(t *testing.T) {
	c, err := config.Parse("p/stateroom.toml", []byte(`[limits]
max_message_size = "64KiB"
max_message_fragments = 8
max_room_id_length = 32
max_rooms_created_per_ip = "none"
allowed_hosts = ["app.example", "*.b.example"]
send_queue_size = 1048576
write_timeout = "3s"
`))
	if err != nil {
		t.Fatal(err)
	}
	var f ServerFlags
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse([]string{"--max-room-id-length", "64"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyFlags(fs); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatal(err)
	}
	so := f.serverOptions(nil, "", "")
	if so.MaxMessageSize != 64<<10 || so.MaxMessageFragments != 8 || so.MaxRoomIDLength != 64 ||
		so.MaxRoomsCreatedPerIP != server.NoLimit || !slices.Equal(so.AllowedHosts, []string{"app.example", "*.b.example"}) ||
		so.SendQueueBytes != 1<<20 || so.WriteTimeout != 3*time.Second {
		t.Fatalf("server options from the file: %+v", so)
	}

	// A size the flag refuses: the error names the file and the key.
	c, err = config.Parse("p/stateroom.toml", []byte("[limits]\nmax_message_size = \"lots\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	new(ServerFlags).register(fs)
	if err := c.ApplyFlags(fs); err == nil || !strings.Contains(err.Error(), `p/stateroom.toml: [limits] max_message_size = "lots": size "lots" must start with a number`) {
		t.Fatalf("a bad size in the file: err = %v", err)
	}
}
