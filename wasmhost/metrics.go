package wasmhost

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateroom-go/stateroom/internal/abi"
)

// metrics are the Prometheus collectors of a Module, or nil when
// Options.Metrics is nil. Children are resolved once so an event costs two
// clock reads and one histogram observation, no label lookup.
type metrics struct {
	instantiate prometheus.Observer
	event       [abi.EventTimer + 1]prometheus.Observer // by event kind
	faults      *prometheus.CounterVec
}

// newMetrics registers the collectors with reg. Modules that share a
// registry (stateroom dev swaps in a new Module on every rebuild) share the
// collectors: an AlreadyRegisteredError hands back the existing one.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	inst, err := register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "stateroom", Subsystem: "wasm", Name: "instantiate_seconds",
		Help:    "Time to start one room's WebAssembly instance (instantiate, _initialize, ABI check).",
		Buckets: prometheus.ExponentialBuckets(20e-6, 2.5, 12), // 20 µs .. ~1.2 s
	}))
	if err != nil {
		return nil, err
	}
	events, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "stateroom", Subsystem: "wasm", Name: "event_seconds",
		Help:    "Time the guest took to handle one event (write it into guest memory, stateroom_recv), by event kind.",
		Buckets: prometheus.ExponentialBuckets(250e-9, 3, 14), // 250 ns .. ~0.4 s
	}, []string{"event"}))
	if err != nil {
		return nil, err
	}
	faults, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "stateroom", Subsystem: "wasm", Name: "faults_total",
		Help: "WebAssembly instances ended by a fault, by the reason their clients were given.",
	}, []string{"reason"}))
	if err != nil {
		return nil, err
	}
	m := &metrics{instantiate: inst, faults: faults}
	for k := range m.event {
		m.event[k] = events.WithLabelValues(abi.EventKind(k).String())
	}
	return m, nil
}

// register registers c, or returns the collector already registered in its
// place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, errors.Join(ErrOptions, err)
	}
	return c, nil
}

// since observes the time from start, when metrics are on.
func observeSince(o prometheus.Observer, start time.Time) {
	o.Observe(time.Since(start).Seconds())
}
