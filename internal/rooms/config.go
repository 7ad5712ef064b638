package rooms

import (
	"log/slog"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/routines"
	"github.com/stateroom-go/stateroom/store"
)

// Config is what the room runtime needs from its host. Every field is
// required unless it says otherwise.
type Config struct {
	// Factory returns the factory new rooms are built with; it is read at
	// each room's creation, so a swap reaches new rooms at once.
	Factory func() stateroom.Factory
	// Encode builds the frame a Member is sent for a payload, once per
	// Send whatever the number of recipients.
	Encode func(p stateroom.Payload) []byte
	// GracePeriod is how long an empty room lives on: EndImmediately,
	// KeepForever, or a positive duration.
	GracePeriod time.Duration
	// MaxRooms and MaxClientsPerRoom are limits; NoLimit for none.
	MaxRooms, MaxClientsPerRoom int
	// Logger gets the rooms' log lines.
	Logger *slog.Logger
	// Owner counts the rooms and their timers, and refuses new rooms once
	// it is closing.
	Owner *routines.Owner
	// Metrics are counted as events happen.
	Metrics Metrics

	// Store, when set, makes rooms whose service is a
	// stateroom.Snapshotter durable (durable.go); nil keeps rooms in
	// memory only.
	Store store.Store
	// CheckpointInterval is the most often a room with events is saved;
	// required with a Store.
	CheckpointInterval time.Duration
	// NoDormancy ends rooms for good even with a pending timer (see
	// dormant.go). A cluster sets it: there a room is started only
	// through the cluster's placement, which checks that this node still
	// owns it, and a dormant room would wake here without asking.
	NoDormancy bool
	// HibernateAfter, when positive, drops the instance of a room whose
	// service is a stateroom.Snapshotter after that long without an
	// event, keeping its snapshot (hibernate.go).
	HibernateAfter time.Duration
	// InstanceDropped, when set, is called after a room dropped its
	// instance: by hibernating (ended false) or by ending (ended true,
	// after the room left the registry, so Registry.RoomCount no longer
	// counts it). It is called with the room's lock held (so it may take
	// only locks that come after a room's): the server counts them to hand
	// the instances' memory back to the operating system.
	InstanceDropped func(ended bool)
}

// Special values of Config.GracePeriod and the limits.
const (
	EndImmediately time.Duration = -1
	KeepForever    time.Duration = -2
	NoLimit                      = -1
)

// Counter and Gauge are the parts of Prometheus metrics the runtime uses;
// prometheus.Counter and prometheus.Gauge implement them.
type (
	Counter interface {
		Inc()
		Add(float64)
	}
	Gauge interface {
		Counter
		Dec()
		Sub(float64)
	}
)

// Metrics are the runtime's metric hooks. Nil fields count nothing.
type Metrics struct {
	Rooms        Gauge
	RoomsCreated Counter
	// RoomEnded is called with the close code a room ended with.
	RoomEnded func(code stateroom.CloseCode)
	// Fault is called with the kind of a service fault: "panic", "fault",
	// or a WebAssembly host's reason ("wasm trap", ...).
	Fault func(kind string)

	Clients           Gauge
	MessagesOut       Counter // one per recipient
	BytesOut          Counter // frame bytes, once per recipient
	DropNotConnected  Counter
	DropClosing       Counter
	DropInvalidUTF8   Counter
	DropQueueFull     Counter
	SlowConsumers     Counter
	HeartbeatTimeouts Counter

	// Durable rooms.
	SnapshotsSaved  Counter
	SnapshotBytes   Counter // bytes handed to the store
	SnapshotSeconds Observer
	RoomsRestored   Counter
	StoreErrors     Counter
	Hibernations    Counter
	Wakes           Counter
}

// Observer is the part of a Prometheus histogram the runtime uses.
type Observer interface{ Observe(float64) }

func (nop) Observe(float64) {}

// saved counts one write to the store.
func (m *Metrics) saved(err error, n int) {
	if err != nil {
		m.StoreErrors.Inc()
		return
	}
	m.SnapshotsSaved.Inc()
	m.SnapshotBytes.Add(float64(n))
}

// nop stands in for every metric left nil.
type nop struct{}

func (nop) Inc()        {}
func (nop) Dec()        {}
func (nop) Add(float64) {}
func (nop) Sub(float64) {}

// withDefaults returns m with nil fields replaced by no-ops, so the hot
// path calls them without checks.
func (m Metrics) withDefaults() Metrics {
	for _, g := range []*Gauge{&m.Rooms, &m.Clients} {
		if *g == nil {
			*g = nop{}
		}
	}
	for _, c := range []*Counter{&m.RoomsCreated, &m.MessagesOut, &m.BytesOut, &m.DropNotConnected,
		&m.DropClosing, &m.DropInvalidUTF8, &m.DropQueueFull, &m.SlowConsumers, &m.HeartbeatTimeouts,
		&m.SnapshotsSaved, &m.SnapshotBytes, &m.RoomsRestored, &m.StoreErrors, &m.Hibernations, &m.Wakes} {
		if *c == nil {
			*c = nop{}
		}
	}
	if m.SnapshotSeconds == nil {
		m.SnapshotSeconds = nop{}
	}
	if m.RoomEnded == nil {
		m.RoomEnded = func(stateroom.CloseCode) {}
	}
	if m.Fault == nil {
		m.Fault = func(string) {}
	}
	return m
}
