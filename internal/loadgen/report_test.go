package loadgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReportOutputs(t *testing.T) {
	rep := &Report{Mode: "fanout", URL: "ws://x/ws", Rooms: 1, Clients: 3, Senders: 1, Window: 1, Messages: 10, Size: 64,
		Sent: 10, Expected: 30, Delivered: 29, Lost: 1, Elapsed: 0.5, FramesPerSec: 58, ToolCPU: 0.45, ToolBusy: 0.9,
		RTT: &Latency{Count: 10, P50: 100, P90: 200, P99: 1500, Max: 2000}}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(js.Bytes(), []byte("}\n")) || bytes.Count(js.Bytes(), []byte("\n")) != 1 {
		t.Errorf("WriteJSON wrote %q; want one line", js.Bytes())
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Lost != 1 || back.RTT.P99 != 1500 || back.Delivered != 29 {
		t.Errorf("JSON round trip = %+v, %v", back, err)
	}
	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"29 of 30 frames", "lost 1", "FAILED", "p99 1.50ms", "may have been the bottleneck"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	for _, r := range []*Report{
		{Mode: "conns", Conns: 10, RSSOpen: 1 << 20, RSSPerConn: 2048},
		{Mode: "churn", RoomsDone: 5, FirstReply: &Latency{P50: 10}},
	} {
		sum.Reset()
		if err := r.WriteSummary(&sum); err != nil || !strings.HasPrefix(sum.String(), r.Mode) {
			t.Errorf("%s summary = %q, %v", r.Mode, sum.String(), err)
		}
	}
	sum.Reset()
	conns := &Report{Mode: "conns", Conns: 300, Connect: &Latency{Count: 300, P50: 900, P90: 1800, P99: 4000, Max: 5200}, ConnectTo: ConnectToFirstReply,
		Handshake: &Latency{Count: 300, P50: 400, P90: 600, P99: 900, Max: 1000}}
	if err := conns.WriteSummary(&sum); err != nil || !strings.Contains(sum.String(), "connect    p50 900µs  p90 1.80ms  p99 4.00ms  max 5.20ms  (dial to first reply, 300 samples)") ||
		!strings.Contains(sum.String(), "handshake  p50 400µs  p90 600µs  p99 900µs  max 1.00ms") {
		t.Errorf("conns summary = %q, %v; want the connect latency and where it ends", sum.String(), err)
	}
	sum.Reset()
	churn := &Report{Mode: "churn", RoomsDone: 100, ServerCPU: 0.008, ServerSysCPU: 0.005, ServerCPUPerRoomUs: 80}
	if err := churn.WriteSummary(&sum); err != nil || !strings.Contains(sum.String(), "80.0 µs/room, 62% in the kernel") {
		t.Errorf("churn summary = %q, %v; want the server's CPU per room and its kernel share", sum.String(), err)
	}
	if err := (&Report{Mode: "nope"}).WriteSummary(&sum); err == nil {
		t.Error("WriteSummary of an unknown mode succeeded")
	}
}
