package wasmhost

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateroom-go/stateroom"
)

// TestMetrics drives a room through events and a fault and reads the
// module's collectors back from the registry.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	opts := testOptions()
	opts.Metrics = reg
	m := loadGuest(t, "relay", opts)
	// A second module on the same registry (a dev rebuild) shares the
	// collectors instead of failing.
	loadGuest(t, "relay", opts)

	s := newService(t, m)
	room := newRoom()
	s.Init(room, stateroom.InitEvent{})
	s.Timer(room, stateroom.TimerEvent{})
	s.Timer(room, stateroom.TimerEvent{})
	mustFault(t, "wasm trap", ErrTrap, func() { command(s, room, "t") })

	if n := testutil.CollectAndCount(reg, "stateroom_wasm_instantiate_seconds"); n != 1 {
		t.Errorf("instantiate histogram: %d series, want 1", n)
	}
	if got := histogramCount(t, reg, "stateroom_wasm_instantiate_seconds", nil); got != 1 {
		t.Errorf("%d instantiations observed, want 1 (the load-time probe does not count)", got)
	}
	if got := histogramCount(t, reg, "stateroom_wasm_event_seconds", map[string]string{"event": "Timer"}); got != 2 {
		t.Errorf("%d Timer events observed, want 2", got)
	}
	if got := histogramCount(t, reg, "stateroom_wasm_event_seconds", map[string]string{"event": "Message"}); got != 1 {
		t.Errorf("%d Message events observed, want 1", got)
	}
	if got := testutil.ToFloat64(m.metrics.faults.WithLabelValues("wasm trap")); got != 1 {
		t.Errorf("faults{reason=wasm trap} = %v, want 1", got)
	}
}

// relayInitialPages is the memory relay.wat declares, (memory 2): what a
// fresh relay instance holds, known without asking wazero.
const relayInitialPages = 2

// TestMemoryBytes checks the instance reports its linear memory to the
// server's room listing, and nothing once closed. The expectations come
// from the guest, not from wazero's view of it: the pages relay.wat
// declares, then what its bump allocator must have grown to for a big
// message.
func TestMemoryBytes(t *testing.T) {
	s := newService(t, loadGuest(t, "relay", testOptions()))
	if got, want := s.MemoryBytes(), int64(relayInitialPages*pageSize); got != want {
		t.Errorf("MemoryBytes of a fresh instance = %d, want the %d pages relay.wat declares (%d)", got, relayInitialPages, want)
	}

	// A message of n event bytes: the host mallocs a one-off buffer of n
	// (over maxRetainedEventBuffer), then the relay allocates its n+20-byte
	// envelope above it, both on its bump heap, which starts at 1024 and
	// aligns to 8. The relay grows memory by the pages it lacks plus one,
	// once per allocation, so the memory ends at least as large as the
	// heap's peak and less than two pages larger.
	const text = 300_000
	n := int64(20 + text)
	s.Message(newRoom(), stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(strings.Repeat("m", text))})
	align := func(v int64) int64 { return (v + 7) &^ 7 }
	peak := 1024 + align(n) + align(n+20)
	got := s.MemoryBytes()
	if got%pageSize != 0 || got < peak || got >= peak+2*pageSize {
		t.Errorf("MemoryBytes after a %d-byte event = %d, want whole pages covering the relay's peak heap of %d bytes, less than two pages over it", n, got, peak)
	}

	s.Close()
	if got := s.MemoryBytes(); got != 0 {
		t.Errorf("MemoryBytes after Close = %d, want 0", got)
	}
}

// histogramCount is the sample count of the histogram series of name whose
// labels include want.
func histogramCount(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) uint64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}
