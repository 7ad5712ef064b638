package server

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
)

// metrics are the server's Prometheus metrics. Every child of a labelled
// metric that the message path touches is resolved once here, so counting
// a message is an atomic add with no label lookup.
type metrics struct {
	gatherer prometheus.Gatherer // nil when the Registerer is not one

	rooms                                                                   prometheus.Gauge
	roomsCreated                                                            prometheus.Counter
	closedEmpty, closedOperator, closedRestart, closedShutdown, closedFault prometheus.Counter

	clients           prometheus.Gauge
	parked            prometheus.Gauge
	messagesIn        prometheus.Counter
	bytesIn           prometheus.Counter
	messagesOut       prometheus.Counter
	bytesOut          prometheus.Counter
	dropNotConnected  prometheus.Counter
	dropClosing       prometheus.Counter
	dropInvalidUTF8   prometheus.Counter
	dropQueueFull     prometheus.Counter
	slowConsumers     prometheus.Counter
	heartbeatTimeouts prometheus.Counter
	rateLimited       prometheus.Counter
	throttled         prometheus.Counter

	snapshotsSaved, snapshotBytes, roomsRestored, storeErrors prometheus.Counter
	hibernations, wakes                                       prometheus.Counter
	snapshotSeconds                                           prometheus.Histogram

	closeCodes  *prometheus.CounterVec // by closeLabel; resolved when sent, but for:
	closeNormal prometheus.Counter     // code 1000, sent at the end of most connections
	faults      *prometheus.CounterVec // by kind
	refused     *prometheus.CounterVec // by reason; refusals are off the message path
}

const namespace = "stateroom"

// newMetrics registers the server's metrics with reg, or with a registry
// of the server's own when reg is nil.
func newMetrics(reg prometheus.Registerer, extra ...prometheus.Collector) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	m.gatherer, _ = reg.(prometheus.Gatherer)

	var errs []error
	for _, c := range extra { // the cluster's (Options.Cluster)
		register(reg, c, &errs)
	}
	counter := func(name, help string) prometheus.Counter {
		return register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}), &errs)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}), &errs)
	}
	counterVec := func(name, help, label string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label}), &errs)
	}

	m.rooms = gauge("rooms", "Rooms running now.")
	m.roomsCreated = counter("rooms_created_total", "Rooms created.")
	closed := counterVec("rooms_closed_total", "Rooms ended, by reason: empty (grace period over), operator (CloseRoom, admin API), restart (SwapFactory), shutdown, fault (the service panicked or its instance faulted).", "reason")
	m.closedEmpty = closed.WithLabelValues("empty")
	m.closedOperator = closed.WithLabelValues("operator")
	m.closedRestart = closed.WithLabelValues("restart")
	m.closedShutdown = closed.WithLabelValues("shutdown")
	m.closedFault = closed.WithLabelValues("fault")

	m.clients = gauge("clients", "WebSocket clients connected now.")
	m.parked = gauge("connections_parked", "Idle connections parked now: no goroutine, their sockets watched by the server's poller (Linux, not TLS).")
	m.messagesIn = counter("messages_received_total", "Messages received from clients.")
	m.bytesIn = counter("received_bytes_total", "Payload bytes of the messages received from clients.")
	m.messagesOut = counter("messages_sent_total", "Messages queued for clients, one per recipient.")
	m.bytesOut = counter("sent_bytes_total", "Frame bytes queued for clients, counted once per recipient.")
	dropped := counterVec("deliveries_dropped_total", "Messages for a client that were not queued, by reason: not_connected (no such client), closing (the client is being closed), invalid_utf8 (the service sent invalid text), queue_full (slow consumer).", "reason")
	m.dropNotConnected = dropped.WithLabelValues("not_connected")
	m.dropClosing = dropped.WithLabelValues("closing")
	m.dropInvalidUTF8 = dropped.WithLabelValues("invalid_utf8")
	m.dropQueueFull = dropped.WithLabelValues("queue_full")
	m.slowConsumers = counter("slow_consumer_disconnects_total", "Clients closed because their send queue was full.")
	m.heartbeatTimeouts = counter("heartbeat_timeouts_total", "Clients closed for being silent past the heartbeat timeout.")
	m.rateLimited = counter("rate_limited_disconnects_total", "Clients closed for sending messages faster than Options.MessageRate (MessageRateAction CloseClient).")
	m.throttled = counter("clients_throttled_total", "Throttle episodes: times the server stopped reading a client that sent faster than Options.MessageRate until it was within its rate again (MessageRateAction Throttle).")
	m.snapshotsSaved = counter("snapshots_saved_total", "Room snapshots written to the store (Options.Store).")
	m.snapshotBytes = counter("snapshot_bytes_total", "Bytes of room snapshots written to the store.")
	m.roomsRestored = counter("rooms_restored_total", "Rooms whose service was restored from a saved snapshot.")
	m.storeErrors = counter("store_errors_total", "Failed loads, saves and set-asides of room state (see the log for the room and the error).")
	m.hibernations = counter("rooms_hibernated_total", "Rooms that hibernated: their instance dropped, their snapshot kept (Options.HibernateAfter).")
	m.wakes = counter("room_wakes_total", "Hibernated rooms woken by an event.")
	m.snapshotSeconds = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "snapshot_seconds", Help: "Time a service took to take its snapshot (the room is busy meanwhile).",
		Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
	}), &errs)
	m.closeCodes = counterVec("close_codes_sent_total", "Close frames sent to clients, by close code: the codes of the server's own table (stateroom.CloseCode) by number, service for 4100-4999 (a service's Room.Close, or a client's code echoed), other for any other code a client chose, 0 for a close frame without a code.", "code")
	m.closeNormal = m.closeCodes.WithLabelValues(strconv.Itoa(int(stateroom.CloseNormal)))
	m.faults = counterVec("service_faults_total", "Rooms ended by their service: panic (a Go service panicked), fault (a stateroom.Fault of the service), or the WebAssembly fault reason.", "kind")
	m.refused = counterVec("connections_refused_total", "WebSocket requests refused before joining a room, by reason.", "reason")
	if err := errors.Join(errs...); err != nil {
		return nil, invalid("cannot register the metrics with Options.Metrics: %v; pass a registry that does not hold other stateroom metrics, or wrap it with prometheus.WrapRegistererWith", err)
	}
	return m, nil
}

// register registers c with reg. If an identical collector is already
// registered (a second Server sharing the registry), that one is used, so
// both servers count into it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errs *[]error) C {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		*errs = append(*errs, err)
	}
	return c
}

// roomMetrics are the room runtime's hooks into m.
func (m *metrics) roomMetrics() rooms.Metrics {
	return rooms.Metrics{
		Rooms:             m.rooms,
		RoomsCreated:      m.roomsCreated,
		RoomEnded:         m.roomEnded,
		Fault:             func(kind string) { m.faults.WithLabelValues(kind).Inc() },
		Clients:           m.clients,
		MessagesOut:       m.messagesOut,
		BytesOut:          m.bytesOut,
		DropNotConnected:  m.dropNotConnected,
		DropClosing:       m.dropClosing,
		DropInvalidUTF8:   m.dropInvalidUTF8,
		DropQueueFull:     m.dropQueueFull,
		SlowConsumers:     m.slowConsumers,
		HeartbeatTimeouts: m.heartbeatTimeouts,
		SnapshotsSaved:    m.snapshotsSaved,
		SnapshotBytes:     m.snapshotBytes,
		SnapshotSeconds:   m.snapshotSeconds,
		RoomsRestored:     m.roomsRestored,
		StoreErrors:       m.storeErrors,
		Hibernations:      m.hibernations,
		Wakes:             m.wakes,
	}
}

// roomEnded counts a room that ended with close code code (the rooms gauge
// is the runtime's to decrement).
func (m *metrics) roomEnded(code stateroom.CloseCode) {
	switch code {
	case stateroom.CloseNormal:
		m.closedEmpty.Inc()
	case stateroom.CloseGoingAway:
		m.closedShutdown.Inc()
	case stateroom.CloseServiceRestart:
		m.closedRestart.Inc()
	case stateroom.CloseServiceFault:
		m.closedFault.Inc()
	default:
		m.closedOperator.Inc()
	}
}

// closeSent counts a close frame with code (0: a close frame with no code).
func (m *metrics) closeSent(code stateroom.CloseCode) {
	if code == stateroom.CloseNormal {
		m.closeNormal.Inc()
		return
	}
	m.closeCodes.WithLabelValues(closeLabel(code)).Inc()
}

// closeLabel is the label of code in close_codes_sent_total. The server
// answers a client's close frame with the client's own code, so the codes
// it sends are the client's to choose: each one a label would let a client
// create series without bound (every code from 3000 to 4999). The codes of
// the server's table (close.go) keep their number; a service's codes share
// "service"; anything else a client sent is "other". That bounds the label
// set to 16 values.
func closeLabel(code stateroom.CloseCode) string {
	switch code {
	case 0, stateroom.CloseNormal, stateroom.CloseGoingAway, stateroom.CloseProtocolError,
		stateroom.CloseInvalidPayload, stateroom.ClosePolicyViolation, stateroom.CloseMessageTooBig,
		stateroom.CloseServiceFault, stateroom.CloseServiceRestart, stateroom.CloseTryAgainLater,
		stateroom.CloseSlowConsumer, stateroom.CloseHeartbeatTimeout, stateroom.CloseRoomClosed,
		stateroom.CloseReplaced:
		return strconv.Itoa(int(code))
	}
	if code >= stateroom.FirstServiceCloseCode && code <= stateroom.LastServiceCloseCode {
		return "service"
	}
	return "other"
}
