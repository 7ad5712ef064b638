package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrDelivery is wrapped by the error of a fanout run whose delivery check
// failed: a client missed a message, got one twice, or got a sender's
// messages out of order.
var ErrDelivery = errors.New("loadgen: delivery check failed")

// Report is the outcome of a run. Fields a mode does not measure are zero
// and left out of the JSON.
type Report struct {
	// Mode is "fanout", "conns" or "churn".
	Mode string `json:"mode"`
	// URL is the endpoint the run used.
	URL string `json:"url"`
	// Rooms, Clients, Senders, Window, Messages, Size and Conns echo the
	// options the run used.
	Rooms    int `json:"rooms"`
	Clients  int `json:"clients,omitempty"`
	Senders  int `json:"senders,omitempty"`
	Window   int `json:"window,omitempty"`
	Messages int `json:"messages,omitempty"`
	Size     int `json:"size,omitempty"`
	Conns    int `json:"conns,omitempty"`
	// Elapsed is the measured phase, in seconds: sending until the last
	// delivery (fanout), opening the connections (conns), or the whole
	// churn.
	Elapsed float64 `json:"elapsed_s"`
	// TimedOut is true when Duration (or StallTimeout) ended the run
	// before it finished its count.
	TimedOut bool `json:"timed_out,omitempty"`
	// Stalled is true when StallTimeout ended the run: nothing was
	// delivered for that long (fanout).
	Stalled bool `json:"stalled,omitempty"`

	// Sent is the number of bench messages sent (fanout).
	Sent int64 `json:"sent,omitempty"`
	// Expected is the number of deliveries the sent messages call for:
	// each to every client of its room (fanout).
	Expected int64 `json:"expected,omitempty"`
	// Delivered is the number of frames delivered, duplicates included
	// (fanout).
	Delivered int64 `json:"delivered,omitempty"`
	// Lost, Duplicates and Reordered count the deliveries that failed the
	// check (fanout): missing, received more than once, received after a
	// later message of the same sender.
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Reordered  int64 `json:"reordered"`
	// Foreign counts frames that were not bench messages of the client's
	// room: the server is not a plain relay, or it misroutes.
	Foreign int64 `json:"foreign"`
	// FramesPerSec is Delivered / Elapsed (fanout).
	FramesPerSec float64 `json:"frames_per_s,omitempty"`
	// RTT is the senders' round trip, send to own echo (fanout).
	RTT *Latency `json:"rtt,omitempty"`

	// ConnsPerSec is the connection setup rate (conns).
	ConnsPerSec float64 `json:"conns_per_s,omitempty"`
	// Connect is the connect latency (conns): from starting to dial to
	// what ConnectTo names.
	Connect *Latency `json:"connect,omitempty"`
	// ConnectTo is where Connect ends (conns): ConnectToFirstReply, the
	// room's first message, when the service sends one on connect (room
	// creation and the service's Connect included), else
	// ConnectToHandshake, the completed WebSocket handshake.
	ConnectTo string `json:"connect_to,omitempty"`
	// Handshake is the latency from starting to dial to the completed
	// handshake when Connect ends at the first reply (conns), for
	// comparison with a service that sends nothing on connect.
	Handshake *Latency `json:"handshake,omitempty"`
	// Ungreeted counts the connections that got no message within a
	// second though the run's first room sent one on connect (conns): a
	// service that greets only a room's first client, say, or a room
	// slower than that. They are in Handshake, not in Connect, and their
	// wait is in Elapsed.
	Ungreeted int `json:"ungreeted,omitempty"`
	// RSSBefore, RSSOpen and RSSAfter are the server's resident memory in
	// bytes before the connections, with them open, and after closing
	// them (conns, with ServerPID).
	RSSBefore int64 `json:"rss_before,omitempty"`
	RSSOpen   int64 `json:"rss_open,omitempty"`
	RSSAfter  int64 `json:"rss_after,omitempty"`
	// RSSPerConn is (RSSOpen - RSSBefore) / Conns in bytes.
	RSSPerConn float64 `json:"rss_per_conn,omitempty"`

	// RoomsDone is the number of rooms that completed their round trip
	// (churn).
	RoomsDone int64 `json:"rooms_done,omitempty"`
	// RoomsPerSec is RoomsDone / Elapsed (churn).
	RoomsPerSec float64 `json:"rooms_per_s,omitempty"`
	// FirstReply is the time from starting to connect to the first reply
	// (churn).
	FirstReply *Latency `json:"first_reply,omitempty"`

	// ToolCPU is the CPU time the tool used during the measured phase, in
	// seconds; ToolCPUPerFrameNs the same per delivered frame (fanout).
	ToolCPU           float64 `json:"tool_cpu_s"`
	ToolCPUPerFrameNs float64 `json:"tool_cpu_per_frame_ns,omitempty"`
	// ToolBusy is ToolCPU / Elapsed: the share of one core the tool used.
	// Near 1 (or above, on more cores) the tool, not the server, may have
	// been the bottleneck.
	ToolBusy float64 `json:"tool_busy"`
	// ServerCPU is the server's CPU time during the measured phase, in
	// seconds (with ServerPID); 10 ms resolution.
	ServerCPU float64 `json:"server_cpu_s,omitempty"`
	// ServerSysCPU is the part of ServerCPU the kernel spent on the
	// server's behalf (system time): on loopback it includes much of the
	// TCP work of both ends, which no server code can avoid.
	ServerSysCPU float64 `json:"server_sys_cpu_s,omitempty"`
	// ServerCPUPerFrameNs is ServerCPU per delivered frame (fanout).
	ServerCPUPerFrameNs float64 `json:"server_cpu_per_frame_ns,omitempty"`
	// ServerCPUPerConnUs is ServerCPU per connection set up (conns).
	ServerCPUPerConnUs float64 `json:"server_cpu_per_conn_us,omitempty"`
	// ServerCPUPerRoomUs is ServerCPU per churned room (churn).
	ServerCPUPerRoomUs float64 `json:"server_cpu_per_room_us,omitempty"`
}

// cpuMeter snapshots the tool's and the server's CPU time at the start of
// a measured phase.
type cpuMeter struct {
	pid       int
	tool      time.Duration
	server    cpuTime
	serverErr error
}

func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, tool: selfCPU()}
	if pid != 0 {
		m.server, m.serverErr = processCPU(pid)
	}
	return m
}

// stop fills r.ToolCPU and r.ServerCPU with the time used since start.
func (m cpuMeter) stop(r *Report) error {
	r.ToolCPU = (selfCPU() - m.tool).Seconds()
	if m.pid == 0 {
		return nil
	}
	if m.serverErr != nil {
		return m.serverErr
	}
	now, err := processCPU(m.pid)
	if err != nil {
		return err
	}
	r.ServerCPU = (now.total() - m.server.total()).Seconds()
	r.ServerSysCPU = (now.sys - m.server.sys).Seconds()
	return nil
}

// busyWarning is the ToolBusy above which the summary warns, for runs of
// at least minBusyElapsed seconds (shorter ones are mostly setup).
const (
	busyWarning    = 0.8
	minBusyElapsed = 0.5
)

// toolBusy fills ToolBusy from ToolCPU and Elapsed.
func (r *Report) toolBusy() {
	if r.Elapsed > 0 {
		r.ToolBusy = r.ToolCPU / r.Elapsed
	}
}

// WriteJSON writes the report as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteSummary writes the report for people, a few aligned lines.
func (r *Report) WriteSummary(w io.Writer) error {
	p := &printer{w: w}
	switch r.Mode {
	case "fanout":
		p.f("fanout  %s: %d rooms x %d clients, %d senders/room, window %d, %d messages/sender of %d B\n",
			r.URL, r.Rooms, r.Clients, r.Senders, r.Window, r.Messages, r.Size)
		p.f("  delivered  %d of %d frames in %.3f s: %.0f frames/s\n", r.Delivered, r.Expected, r.Elapsed, r.FramesPerSec)
		if r.RTT != nil && r.RTT.Count > 0 {
			p.f("  round trip p50 %s  p90 %s  p99 %s  max %s  (%d samples)\n",
				us(r.RTT.P50), us(r.RTT.P90), us(r.RTT.P99), us(r.RTT.Max), r.RTT.Count)
		}
		verdict := "ok: every client got every message of its room once, in order"
		if r.Lost+r.Duplicates+r.Reordered != 0 {
			verdict = "FAILED"
		}
		p.f("  check      lost %d  duplicates %d  reordered %d  foreign %d: %s\n", r.Lost, r.Duplicates, r.Reordered, r.Foreign, verdict)
		p.f("  tool CPU   %.3f s (%.0f ns/frame, %.0f%% of a core)\n", r.ToolCPU, r.ToolCPUPerFrameNs, 100*r.ToolBusy)
		if r.ServerCPU != 0 || r.ServerCPUPerFrameNs != 0 {
			p.f("  server CPU %.3f s (%.0f ns/frame%s)\n", r.ServerCPU, r.ServerCPUPerFrameNs, r.kernelShare())
		}
	case "conns":
		p.f("conns   %s: %d idle connections over %d rooms\n", r.URL, r.Conns, r.Rooms)
		p.f("  setup      %.3f s: %.0f connections/s\n", r.Elapsed, r.ConnsPerSec)
		if r.Connect != nil && r.Connect.Count > 0 {
			p.f("  connect    p50 %s  p90 %s  p99 %s  max %s  (dial to %s, %d samples)\n",
				us(r.Connect.P50), us(r.Connect.P90), us(r.Connect.P99), us(r.Connect.Max), r.ConnectTo, r.Connect.Count)
		}
		if r.Handshake != nil && r.Handshake.Count > 0 {
			p.f("  handshake  p50 %s  p90 %s  p99 %s  max %s  (dial to handshake)\n",
				us(r.Handshake.P50), us(r.Handshake.P90), us(r.Handshake.P99), us(r.Handshake.Max))
		}
		if r.Ungreeted > 0 {
			p.f("  ungreeted  %d connections got no message within 1 s: in the handshake figures only; their wait is in the setup time\n", r.Ungreeted)
		}
		if r.RSSOpen != 0 {
			p.f("  server RSS before %s, open %s, after %s: %.0f B (%.2f KiB) per connection\n",
				mib(r.RSSBefore), mib(r.RSSOpen), mib(r.RSSAfter), r.RSSPerConn, r.RSSPerConn/1024)
		}
		p.f("  tool CPU   %.3f s (%.0f%% of a core)\n", r.ToolCPU, 100*r.ToolBusy)
		if r.ServerCPU != 0 || r.ServerCPUPerConnUs != 0 {
			p.f("  server CPU %.3f s (%.1f µs/connection%s)\n", r.ServerCPU, r.ServerCPUPerConnUs, r.kernelShare())
		}
	case "churn":
		p.f("churn   %s: %d fresh rooms, connect + one round trip + close\n", r.URL, r.Rooms)
		p.f("  rooms      %d in %.3f s: %.0f rooms/s\n", r.RoomsDone, r.Elapsed, r.RoomsPerSec)
		if r.FirstReply != nil && r.FirstReply.Count > 0 {
			p.f("  first reply p50 %s  p90 %s  p99 %s  max %s\n",
				us(r.FirstReply.P50), us(r.FirstReply.P90), us(r.FirstReply.P99), us(r.FirstReply.Max))
		}
		p.f("  tool CPU   %.3f s (%.0f%% of a core)\n", r.ToolCPU, 100*r.ToolBusy)
		if r.ServerCPU != 0 || r.ServerCPUPerRoomUs != 0 {
			p.f("  server CPU %.3f s (%.1f µs/room%s)\n", r.ServerCPU, r.ServerCPUPerRoomUs, r.kernelShare())
		}
	default:
		return fmt.Errorf("loadgen: report has unknown mode %q", r.Mode)
	}
	if r.ToolBusy > busyWarning && r.Elapsed >= minBusyElapsed {
		p.f("  warning: the tool kept %.0f%% of a core busy and may have been the bottleneck: give it more cores, or measure with fewer clients\n", 100*r.ToolBusy)
	}
	if r.TimedOut {
		p.f("  stopped before the count was reached: %s; lost counts what was undelivered then\n", stopReason(r))
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func us(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fms", v/1000)
	}
	return fmt.Sprintf("%.0fµs", v)
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// kernelShare says, for the summary, how much of the server's CPU time was
// system time: the part a change to the server's Go code cannot remove.
func (r *Report) kernelShare() string {
	if r.ServerCPU <= 0 {
		return ""
	}
	return fmt.Sprintf(", %.0f%% in the kernel", 100*r.ServerSysCPU/r.ServerCPU)
}
