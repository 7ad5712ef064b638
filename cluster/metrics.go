package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are the node's Prometheus metrics. The server registers them with
// its own (server.Cluster's Collectors), so they appear on its /metrics.
type metrics struct {
	forwardedMessages prometheus.Counter     // client messages sent to owners
	forwardedFrames   prometheus.Counter     // frames from owners handed to this node's clients
	ownership         *prometheus.CounterVec // rooms placed here: created, takeover
	renewals          *prometheus.CounterVec // lease renewals: ok, failed, expired
	gaps              prometheus.Counter     // links closed because messages were lost
	fenced            prometheus.Gauge
}

func newMetrics() *metrics {
	const ns, sub = "stateroom", "cluster"
	return &metrics{
		forwardedMessages: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forwarded_messages_total",
			Help: "Client messages this node forwarded to the node that owns their room."}),
		forwardedFrames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forwarded_frames_total",
			Help: "Frames from rooms owned by other nodes that this node delivered to its clients."}),
		ownership: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ownership_changes_total",
			Help: "Rooms this node became the owner of: created (no owner before) or takeover (from a node whose lease ended)."}, []string{"kind"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "lease_renewals_total",
			Help: "Renewals of this node's lease, by result: ok, failed, lapsed (not renewed in time: fenced until the old lease has expired), expired (registered again as a new incarnation)."}, []string{"result"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "link_gaps_total",
			Help: "Clients closed with 1013 because messages between nodes were lost."}),
		fenced: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "fenced",
			Help: "1 while this node has stopped serving rooms because it could not renew its lease."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.forwardedMessages, m.forwardedFrames, m.ownership, m.renewals, m.gaps, m.fenced}
}
