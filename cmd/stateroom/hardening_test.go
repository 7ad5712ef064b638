package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/internal/testcert"
	"github.com/stateroom-go/stateroom/server"
)

// The tests of the hardening flags run the built binary against real
// WebSocket clients; the flag parsing alone is tested through runF below.

// TestServeTokensOriginMetrics serves with a client token (flag) and an
// admin token (environment): a client without the token is refused, one
// with it plays; the admin API lists the room; /metrics serves the
// server's metrics; a page on another site is refused, the server's own
// page is not.
func TestServeTokensOriginMetrics(t *testing.T) {
	const clientToken, adminToken = "client-secret", "admin-secret-0123456789"
	p := startEnv(t, builtScaffold(t), []string{envAdminToken + "=" + adminToken},
		"serve", ".", "-p", "0", "--cache-dir", cacheDir, "--client-token", clientToken)
	httpURL, wsURL := p.ready(t)

	if _, err := tryDial(t, wsURL+"/ws/r1", client.Options{}); refusal(err) != http.StatusUnauthorized {
		t.Fatalf("dial without the token: %v; want a 401 refusal", err)
	}
	if _, err := tryDial(t, wsURL+"/ws/r1?auth=wrong", client.Options{}); refusal(err) != http.StatusUnauthorized {
		t.Fatalf("dial with a wrong token: %v; want a 401 refusal", err)
	}
	a := dial(t, wsURL, "r1?auth="+clientToken)
	a.expect("new value: 0")
	a.send("increment")
	a.expect("new value: 1")
	// The header works as well as the query parameter.
	b, err := tryDial(t, wsURL+"/ws/r1", client.Options{Auth: clientToken})
	if err != nil {
		t.Fatalf("dial with a bearer header: %v", err)
	}
	b.expect("new value: 1")

	// Cross-site WebSocket hijacking: a page on another site is refused by
	// default, even with the token; the server's own page is not.
	evil := client.Options{Header: http.Header{"Origin": {"http://evil.example"}}}
	if _, err := tryDial(t, wsURL+"/ws/r1?auth="+clientToken, evil); refusal(err) != http.StatusForbidden {
		t.Fatalf("dial from http://evil.example: %v; want a 403 refusal", err)
	}
	own := client.Options{Header: http.Header{"Origin": {httpURL}}}
	c, err := tryDial(t, wsURL+"/ws/r1?auth="+clientToken, own)
	if err != nil {
		t.Fatalf("dial from the server's own origin %s: %v", httpURL, err)
	}
	c.expect("new value: 1")

	// The admin API: off without the token, the room list with it.
	if code, _ := getWith(t, http.DefaultClient, httpURL+"/admin/rooms", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /admin/rooms without the admin token: %d, want 401", code)
	}
	code, body := getWith(t, http.DefaultClient, httpURL+"/admin/rooms", adminToken)
	var rooms []struct {
		ID      string `json:"id"`
		Clients int    `json:"clients"`
	}
	if err := json.Unmarshal([]byte(body), &rooms); code != 200 || err != nil {
		t.Fatalf("GET /admin/rooms: %d %q (%v)", code, body, err)
	}
	if len(rooms) != 1 || rooms[0].ID != "r1" || rooms[0].Clients != 3 {
		t.Errorf("GET /admin/rooms: %+v, want room r1 with 3 clients", rooms)
	}

	code, body = get(t, httpURL+"/metrics")
	if code != 200 || !strings.Contains(body, "stateroom_clients ") {
		t.Errorf("GET /metrics: %d, no server metric in %d bytes", code, len(body))
	}
	// The wasm host reports to the same registry: room r1 started one
	// instance.
	if !strings.Contains(body, "stateroom_wasm_instantiate_seconds_count 1") {
		t.Errorf("GET /metrics: no wasm instantiation counted in:\n%s", body)
	}
	// The clients answer the server's close as browsers do, so the stop
	// need not wait out the clients that would not.
	var checks []func(stateroom.CloseCode)
	for _, cl := range []*roomClient{a, b, c} {
		checks = append(checks, cl.closed())
	}
	if err := p.interrupt(t); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	for _, check := range checks {
		check(stateroom.CloseGoingAway)
	}
}

// TestServeTLS serves wss with a self-signed certificate the client trusts;
// --metrics-path moves the metrics.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	p := start(t, builtScaffold(t), "serve", ".", "-p", "0", "--cache-dir", cacheDir,
		"--tls-cert", certFile, "--tls-key", keyFile, "--metrics-path", "/internal/metrics")
	httpURL, wsURL := p.ready(t)
	if !strings.HasPrefix(httpURL, "https://") || !strings.HasPrefix(wsURL, "wss://") {
		t.Fatalf("ready line has %s and %s, want https and wss", httpURL, wsURL)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()

	c, err := tryDial(t, wsURL+"/ws/secure", client.Options{TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatalf("dial over wss: %v", err)
	}
	c.expect("new value: 0")
	c.send("increment")
	c.expect("new value: 1")

	if code, body := getWith(t, hc, httpURL+"/internal/metrics", ""); code != 200 || !strings.Contains(body, "stateroom_") {
		t.Errorf("GET /internal/metrics over https: %d, no stateroom_ metric in %d bytes", code, len(body))
	}
	if code, _ := getWith(t, hc, httpURL+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("GET /metrics with --metrics-path elsewhere: %d, want 404", code)
	}
	// A client that does not trust the certificate cannot connect.
	if _, err := tryDial(t, wsURL+"/ws/secure", client.Options{}); err == nil {
		t.Error("dial over wss with the system roots succeeded; want a certificate error")
	}
	closed := c.closed()
	if err := p.interrupt(t); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	closed(stateroom.CloseGoingAway)
}

// TestServeLimitFlags checks that the origin, room and rate flags reach
// the server: an allowed origin connects, a full room closes its newcomer
// with 1013, a client over the message rate is closed with 1008 (with
// --message-rate-action close), and --no-metrics turns /metrics off.
func TestServeLimitFlags(t *testing.T) {
	p := start(t, builtScaffold(t), "serve", ".", "-p", "0", "--cache-dir", cacheDir,
		"--allowed-origin", "https://app.example", "--max-clients-per-room", "1",
		"--message-rate", "1", "--message-burst", "2", "--message-rate-action", "close", "--no-metrics")
	httpURL, wsURL := p.ready(t)

	app := client.Options{Header: http.Header{"Origin": {"https://app.example"}}}
	a, err := tryDial(t, wsURL+"/ws/full", app)
	if err != nil {
		t.Fatalf("dial from the allowed origin: %v", err)
	}
	a.expect("new value: 0")
	// With an allow list, the server's own origin is no longer implied.
	own := client.Options{Header: http.Header{"Origin": {httpURL}}}
	if _, err := tryDial(t, wsURL+"/ws/full", own); refusal(err) != http.StatusForbidden {
		t.Errorf("dial from %s, not in --allowed-origin: %v; want a 403 refusal", httpURL, err)
	}

	b := dial(t, wsURL, "full")
	b.closed()(stateroom.CloseTryAgainLater)

	// The burst of 2 lets two messages through at once; the next ones
	// exceed the rate of 1/s.
	aClosed := a.closed()
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := a.conn.Send(ctx, stateroom.Text("increment"))
		cancel()
		if err != nil {
			break // closed by the server already
		}
	}
	aClosed(stateroom.ClosePolicyViolation)

	if code, _ := get(t, httpURL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics with --no-metrics: %d, want 404", code)
	}
}

// TestServeTLSErrors checks the advice for TLS files users get wrong.
func TestServeTLSErrors(t *testing.T) {
	certFile, _, _ := testcert.Write(t)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, t.TempDir(), nil, "serve", filepath.Join(builtScaffold(t), "dist"), "-p", "0", "--cache-dir", cacheDir,
		"--tls-cert", certFile, "--tls-key", junk)
	if err == nil || !strings.Contains(stderr, "cannot load --tls-cert") || !strings.Contains(stderr, "PEM") {
		t.Fatalf("a key that is not PEM: err=%v stderr:\n%s", err, stderr)
	}
}

// TestHardeningFlagsDefaults checks that the new flags left alone give the
// server's defaults.
func TestHardeningFlagsDefaults(t *testing.T) {
	t.Setenv(envClientToken, "")
	t.Setenv(envAdminToken, "")
	got := parseServe(t, "m.wasm")
	so := got.Server.serverOptions(nil, "", "")
	if so.AllowedOrigins != nil || so.ClientToken != "" || so.AdminToken != "" ||
		so.MetricsPath != server.DefaultMetricsPath || so.DisableMetrics ||
		so.HandshakeTimeout != server.DefaultHandshakeTimeout ||
		so.MaxConnections != server.DefaultMaxConnections || so.MaxConnectionsPerIP != server.DefaultMaxConnectionsPerIP ||
		so.TrustForwardedFor || so.MaxRooms != server.DefaultMaxRooms || so.MaxClientsPerRoom != server.DefaultMaxClientsPerRoom ||
		so.MessageRate != server.DefaultMessageRate || so.MessageRateAction != server.Throttle || so.MessageBurst != 0 {
		t.Fatalf("server options from the defaults: %+v", so)
	}
	if got.Server.TLSCert != "" || got.Server.TLSKey != "" {
		t.Fatalf("TLS files by default: %+v", got.Server)
	}
	srv, err := server.New(stateroom.FactoryFunc(func(string) (stateroom.Service, error) { return nil, stateroom.ErrRoomRefused }), so)
	if err != nil {
		t.Fatalf("the default flags are not valid server options: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestHardeningFlagsSet checks every new flag's way into server.Options.
func TestHardeningFlagsSet(t *testing.T) {
	t.Setenv(envClientToken, "")
	t.Setenv(envAdminToken, "")
	got := parseServe(t, "m.wasm",
		"--allowed-origin", "https://a.example", "--allowed-origin", "https://*.b.example",
		"--client-token", "c", "--admin-token", "0123456789abcdef",
		"--metrics-path", "/m", "--no-metrics", "--handshake-timeout", "3s",
		"--max-connections", "none", "--max-connections-per-ip", "7", "--trust-forwarded-for",
		"--max-rooms", "UNLIMITED", "--max-clients-per-room", "off",
		"--message-rate", "0.5", "--message-burst", "9", "--message-rate-action", "Close",
		"--tls-cert", "c.pem", "--tls-key", "k.pem")
	so := got.Server.serverOptions(nil, "", "")
	want := server.Options{
		// The flags this test leaves alone, at their documented defaults
		// (--room-grace 30s, -i 30, -t 120, --checkpoint-interval 1s,
		// --hibernate-after 5m).
		RoomGracePeriod: 30 * time.Second, HeartbeatInterval: 30 * time.Second, HeartbeatTimeout: 120 * time.Second,
		CheckpointInterval: time.Second, HibernateAfter: 5 * time.Minute,
		AllowedOrigins: []string{"https://a.example", "https://*.b.example"},
		ClientToken:    "c", AdminToken: "0123456789abcdef",
		MetricsPath: "/m", DisableMetrics: true, HandshakeTimeout: 3 * time.Second,
		MaxConnections: server.NoLimit, MaxConnectionsPerIP: 7, TrustForwardedFor: true,
		MaxRooms: server.NoLimit, MaxClientsPerRoom: server.NoLimit,
		MessageRate: 0.5, MessageBurst: 9, MessageRateAction: server.CloseClient,
		// The limit flags of flags_test.go's TestLimitFlags, at their
		// defaults.
		MaxMessageSize: server.DefaultMaxMessageSize, MaxMessageFragments: server.DefaultMaxMessageFragments,
		MaxRoomIDLength: server.DefaultMaxRoomIDLength, MaxRoomsCreatedPerIP: server.DefaultMaxRoomsCreatedPerIP,
		SendQueueBytes: server.DefaultSendQueueBytes, WriteTimeout: server.DefaultWriteTimeout, OptionNames: optionFlags,
	}
	if !equalOptions(so, want) {
		t.Fatalf("server options:\n got %+v\nwant %+v", so, want)
	}
	if got.Server.TLSCert != "c.pem" || got.Server.TLSKey != "k.pem" {
		t.Fatalf("TLS files: %q %q", got.Server.TLSCert, got.Server.TLSKey)
	}
}

// equalOptions compares two server.Options but for their loggers.
func equalOptions(a, b server.Options) bool {
	a.Logger, b.Logger = nil, nil
	return reflect.DeepEqual(a, b)
}

// TestTokensFromEnvironment checks that the tokens come from the
// environment unless a flag gives them.
func TestTokensFromEnvironment(t *testing.T) {
	t.Setenv(envClientToken, "from-env")
	t.Setenv(envAdminToken, "admin-from-env-0123")
	got := parseServe(t, "m.wasm")
	if got.Server.ClientToken != "from-env" || got.Server.AdminToken != "admin-from-env-0123" {
		t.Fatalf("tokens from the environment: %q %q", got.Server.ClientToken, got.Server.AdminToken)
	}
	got = parseServe(t, "m.wasm", "--client-token", "from-flag")
	if got.Server.ClientToken != "from-flag" || got.Server.AdminToken != "admin-from-env-0123" {
		t.Fatalf("a flag over the environment: %q %q", got.Server.ClientToken, got.Server.AdminToken)
	}
	// dev reads them too.
	var d *DevOptions
	if err := parse(t, NewCmdDev(func(_ context.Context, o *DevOptions) error { d = o; return errRan })); !errors.Is(err, errRan) || d.Server.ClientToken != "from-env" {
		t.Fatalf("dev: err=%v token %q", err, d.Server.ClientToken)
	}
	// A short admin token from the environment is refused like the flag's.
	t.Setenv(envAdminToken, "short")
	if err := parse(t, NewCmdServe(nil), "m.wasm"); err == nil || !strings.Contains(err.Error(), "--admin-token is 5 bytes long") {
		t.Fatalf("short admin token from the environment: err = %v", err)
	}
}

func TestHardeningFlagErrors(t *testing.T) {
	t.Setenv(envClientToken, "")
	t.Setenv(envAdminToken, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert c.pem needs --tls-key"},
		{[]string{"--tls-key", "k.pem"}, "--tls-key k.pem needs --tls-cert"},
		{[]string{"--max-connections", "0"}, `"0" is not a limit; use a positive count, or none`},
		{[]string{"--max-rooms", "1.5"}, "positive whole number"},
		{[]string{"--max-clients-per-room", "lots"}, "is not a limit"},
		{[]string{"--max-connections-per-ip", "99999999999"}, "positive whole number"},
		{[]string{"--message-rate", "-1"}, "use a positive rate, or none"},
		{[]string{"--message-rate", "NaN"}, "is not a limit"},
		{[]string{"--message-burst", "-2"}, "--message-burst -2 must be a positive"},
		{[]string{"--message-rate-action", "drop"}, `"drop" is not an action; use throttle or close`},
		{[]string{"--handshake-timeout", "0s"}, "--handshake-timeout 0s must be a positive duration"},
		{[]string{"--admin-token", "short"}, "--admin-token is 5 bytes long; use at least 16"},
	} {
		ran := false
		err := parse(t, NewCmdServe(func(context.Context, *ServeOptions) error { ran = true; return nil }), append([]string{"m.wasm"}, tc.args...)...)
		if err == nil || ran || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %q: ran=%v err=%v; want an error containing %q", tc.args, ran, err, tc.want)
		}
	}
}

// TestDevOrigins checks the origins dev allows: its own address under
// each name, in the scheme it serves, after the user's.
func TestDevOrigins(t *testing.T) {
	for _, tc := range []struct {
		f    ServerFlags
		want []string
	}{
		{ServerFlags{Host: "127.0.0.1"}, []string{"http://localhost:8080", "http://127.0.0.1:8080"}},
		{ServerFlags{Host: "0.0.0.0"}, []string{"http://localhost:8080", "http://127.0.0.1:8080"}},
		{ServerFlags{Host: "::1", TLSCert: "c"}, []string{"https://localhost:8080", "https://127.0.0.1:8080", "https://[::1]:8080"}},
		{ServerFlags{Host: "devbox", AllowedOrigins: []string{"http://localhost:5173"}},
			[]string{"http://localhost:5173", "http://localhost:8080", "http://127.0.0.1:8080", "http://devbox:8080"}},
	} {
		got := devOrigins(&tc.f, "8080")
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("host %s: %q, want %q", tc.f.Host, got, tc.want)
		}
	}
}

// parseServe parses a serve command line and returns the options runF got.
func parseServe(t *testing.T, args ...string) *ServeOptions {
	t.Helper()
	var got *ServeOptions
	if err := parse(t, NewCmdServe(func(_ context.Context, o *ServeOptions) error { got = o; return errRan }), args...); !errors.Is(err, errRan) {
		t.Fatalf("serve %q: err = %v", args, err)
	}
	return got
}

// getWith fetches url with hc, with a bearer token unless it is empty,
// and returns the status and body.
func getWith(t *testing.T, hc *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
