package rooms

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/stateroom-go/stateroom"
)

// instance is the running service of a room: the one thing the room calls
// into. It is apart from the room's members and timers so that a room can
// drop its instance and build another (evict and restore from a snapshot,
// replace it with a new build's) while its clients stay connected. Guarded
// by the room's mutex.
type instance struct {
	svc     stateroom.Service
	faulted bool // the service panicked: it is never called again
}

// newInstance builds a room's service with f, turning a panic or a nil
// service into an error.
func newInstance(f stateroom.Factory, id string) (inst instance, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("room %q: the service factory panicked: %v", id, v)
		}
	}()
	svc, err := f.NewService(id)
	if err == nil && svc == nil {
		err = fmt.Errorf("room %q: the service factory returned a nil service and no error; return a service or an error", id)
	}
	return instance{svc: svc}, err
}

// live reports whether the instance can be called.
func (in *instance) live() bool { return in.svc != nil && !in.faulted }

// panicked describes a panic of the service: the close reason its clients
// see and the kind for the metric.
func panicked(v any) (reason, kind string) {
	reason, kind = "service fault", "panic"
	var f *stateroom.Fault
	if err, ok := v.(error); ok && errors.As(err, &f) {
		kind = "fault"
		if f.Reason != "" {
			reason = f.Reason
		}
		// The WebAssembly host's reasons are a fixed set and are kept; a
		// Go service's own are free text and fold into "fault", so the
		// label's values stay few.
		if strings.HasPrefix(reason, "wasm ") {
			kind = reason
		}
	}
	return reason, kind
}

// memoryBytes asks a MemoryReporter service for its memory, or returns -1.
func (in *instance) memoryBytes(r *Room) (n int64) {
	mr, ok := in.svc.(stateroom.MemoryReporter)
	if !in.live() || !ok {
		return -1
	}
	defer func() {
		if v := recover(); v != nil {
			r.logger().Error("service MemoryBytes panicked", "panic", v)
			n = -1
		}
	}()
	return mr.MemoryBytes()
}

// close calls the service's Close if it is an io.Closer, and drops it. It
// runs even after a panic: a WebAssembly service must release its
// instance.
func (in *instance) close(r *Room) {
	svc := in.svc
	in.svc = nil
	closer, ok := svc.(io.Closer)
	if !ok {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.logger().Error("service Close panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if err := closer.Close(); err != nil {
		r.logger().Warn("service Close failed", "err", err)
	}
}
