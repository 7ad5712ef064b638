package wasmhost

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	room := &fakeRoom{}
	s.Init(room)
	s.Timer(room)
	s.Timer(room)
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

// TestMemoryBytes checks the instance reports its linear memory to the
// server's room listing, and nothing once closed.
func TestMemoryBytes(t *testing.T) {
	s := newService(t, loadGuest(t, "relay", testOptions()))
	if got, want := s.MemoryBytes(), int64(s.mem.Size()); got != want || got < pageSize {
		t.Errorf("MemoryBytes = %d, want the memory's %d bytes", got, want)
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
