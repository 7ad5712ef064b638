package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// scrape fetches url and returns every sample as "name{label=value}" (one
// label at most, as the server's metrics have) to its value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	out := make(map[string]float64)
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return -1
}

// checkMetrics polls the metrics until every want holds, and otherwise
// fails with what the last scrape found. (Not through eventually: its
// message's arguments are evaluated before it polls.)
func checkMetrics(t *testing.T, url string, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := scrape(t, url)
		ok := true
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for metrics %v; the last scrape had %v", want, pick(got, want))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func pick(got, want map[string]float64) map[string]float64 {
	out := make(map[string]float64)
	for k := range want {
		out[k] = got[k]
	}
	return out
}

func TestMetrics(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{RoomGracePeriod: KeepRoomsForever})
	url := ts.URL + "/metrics"

	a := dial(t, ts, "/ws/m")
	b, bSocket := dialTapped(t, ts, "/ws/m") // to send invalid UTF-8, which package client refuses to
	outBytes := 0
	var bID string // clients join at Connect, after the handshake: b may be client 1
	for _, c := range []*client.Conn{a, b} {
		msg := expectPrefix(t, c, "hello")
		outBytes += 2 + len(msg) // a frame under 126 bytes has a 2-byte header
		m := helloRE.FindStringSubmatch(msg)
		if m == nil {
			t.Fatalf("got %q, want a hello with the client id", msg)
		}
		bID = m[1]
	}
	checkMetrics(t, url, map[string]float64{
		"stateroom_rooms":               1,
		"stateroom_rooms_created_total": 1,
		"stateroom_clients":             2,
	})

	send(t, a, "all:hi")  // 6 bytes in, 2 deliveries of a 4-byte frame
	send(t, a, "to:99:x") // 7 bytes in, dropped: no client 99
	expect(t, a, "hi")
	expect(t, b, "hi")
	// Send only queues: "to:99:x" may still wait for a's writer (a busy
	// machine can hold it past the rest of this test), so wait for its
	// drop before the room is closed.
	checkMetrics(t, url, map[string]float64{"stateroom_deliveries_dropped_total{reason=not_connected}": 1})
	bSocket.inject(t, ws.NewTextFrame([]byte("echo:\xff"))) // invalid UTF-8 is refused by the reader, closing b
	outBytes += 2 * 4
	expectClose(t, b, stateroom.CloseInvalidPayload, "text message is not valid UTF-8; send bytes as a binary message")
	expect(t, a, "left "+bID) // the probe's Disconnect tells everyone
	outBytes += 2 + 6

	// A second room whose service panics.
	p := dial(t, ts, "/ws/p")
	outBytes += 2 + len(expectPrefix(t, p, "hello"))
	send(t, p, "panic")
	expectClose(t, p, stateroom.CloseServiceFault, "service fault")

	expectRefused(t, ts, "/ws/m", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, "AllowedOrigins")
	if !s.CloseRoom("m", 0, "bye") {
		t.Fatal("CloseRoom(m) found no room")
	}
	expectClose(t, a, stateroom.CloseRoomClosed, "bye")

	checkMetrics(t, url, map[string]float64{
		"stateroom_rooms":                                          0,
		"stateroom_rooms_created_total":                            2,
		"stateroom_rooms_closed_total{reason=operator}":            1,
		"stateroom_rooms_closed_total{reason=fault}":               1,
		"stateroom_clients":                                        0,
		"stateroom_messages_received_total":                        3, // "panic" too; b's invalid text never reached the room
		"stateroom_received_bytes_total":                           6 + 7 + 5,
		"stateroom_messages_sent_total":                            6, // 3 hellos, 2 "hi", "left 2"
		"stateroom_sent_bytes_total":                               float64(outBytes),
		"stateroom_deliveries_dropped_total{reason=not_connected}": 1,
		"stateroom_close_codes_sent_total{code=1007}":              1,
		"stateroom_close_codes_sent_total{code=1011}":              1,
		"stateroom_close_codes_sent_total{code=4002}":              1,
		"stateroom_service_faults_total{kind=panic}":               1,
		"stateroom_connections_refused_total{reason=origin}":       1,
	})
}

func TestMetricsRegistry(t *testing.T) {
	f := probeFactory(&eventLog{}, "")
	// Two servers on one registry count into the same metrics.
	reg := prometheus.NewRegistry()
	_, ts1 := startServer(t, f, Options{Metrics: reg})
	_, ts2 := startServer(t, f, Options{Metrics: reg})
	expectPrefix(t, dial(t, ts1, "/ws/a"), "hello")
	expectPrefix(t, dial(t, ts2, "/ws/a"), "hello")
	checkMetrics(t, ts1.URL+"/metrics", map[string]float64{"stateroom_clients": 2})

	// Two servers with their own registries do not collide.
	_, own1 := startServer(t, f, Options{})
	_, own2 := startServer(t, f, Options{MetricsPath: "/internal/metrics"})
	expectPrefix(t, dial(t, own1, "/ws/a"), "hello")
	checkMetrics(t, own1.URL+"/metrics", map[string]float64{"stateroom_clients": 1})
	checkMetrics(t, own2.URL+"/internal/metrics", map[string]float64{"stateroom_clients": 0})
	if got := scrape(t, own1.URL+"/metrics"); got["go_goroutines"] == 0 {
		t.Error("the server's own registry has no Go runtime metrics")
	}

	// Off, or a Registerer that cannot be gathered: no route.
	_, off := startServer(t, f, Options{DisableMetrics: true})
	_, wrapped := startServer(t, f, Options{Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"server": "x"}, prometheus.NewRegistry())})
	for _, u := range []string{off.URL + "/metrics", wrapped.URL + "/metrics", own2.URL + "/metrics"} {
		if code, body := httpGet(t, u, nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", u, code, body)
		}
	}

	for _, bad := range []string{"metrics", "/status", "/ws/metrics", "/a b"} {
		if _, err := New(f, Options{MetricsPath: bad}); err == nil || !strings.Contains(err.Error(), "MetricsPath") {
			t.Errorf("MetricsPath %q: got %v, want an error naming MetricsPath", bad, err)
		}
	}
}
