package wasmhost

import (
	"context"
	"time"
)

// Closing a Module while rooms are in the middle of a call into their
// guest. wazero v1.12.0's Runtime.Close releases each instance's WASI
// state (ModuleInstance.Sys = nil), and its memory through the allocator,
// with no lock, while a WASI function of a call in progress on the room's
// goroutine may still read it: a data race (-race reported it in the sleep
// test) and, for the memory, a use after free. So Module.Close first stops
// the calls in progress and keeps new ones from starting, and only then
// closes the runtime:
//
//   - every call into a guest holds its service's call mutex (beginCall to
//     endCall), an uncontended lock per call;
//   - Close wakes guests asleep in WASI (m.done), cancels the context of
//     every instance's current call, which makes wazero stop a guest at
//     its next check (close-on-context-done, on with the event budget),
//     and takes every live service's call mutex, waiting for the call in
//     progress to return;
//   - it closes the runtime while it holds them, then lets go: a room that
//     was waiting to start a call finds its instance closed and faults
//     with ErrClosed, as before.
//
// A guest run without a budget (NoBudget) and caught in a loop never
// checks and never returns. Close waits for it at most closeGrace, then
// closes the runtime anyway: such a guest is in its own code, not in a
// WASI function, so nothing reads what Close releases except the guest's
// memory, whose mapping the service still holds (see linearMemory).

// closeGrace bounds how long Close waits for one call that does not stop.
const closeGrace = time.Second

// track adds s to the Module's live services, or reports false if the
// Module is closed (or closing): no new instance may start then.
func (m *Module) track(s *service) bool {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if m.closed.Load() {
		return false
	}
	if m.live == nil {
		m.live = make(map[*service]struct{})
	}
	m.live[s] = struct{}{}
	return true
}

// untrack removes s from the live services.
func (m *Module) untrack(s *service) {
	m.liveMu.Lock()
	delete(m.live, s)
	m.liveMu.Unlock()
}

// stopCalls stops every call in progress into an instance of m and keeps
// new ones from starting until the returned func is called. m.closed is
// already set and m.done closed, so no instance starts from now on.
func (m *Module) stopCalls(ctx context.Context) (release func()) {
	m.liveMu.Lock()
	live := make([]*service, 0, len(m.live))
	for s := range m.live {
		live = append(live, s)
	}
	m.liveMu.Unlock()

	for _, s := range live {
		if cancel := s.abort.Load(); cancel != nil {
			(*cancel)(ErrClosed)
		}
	}
	deadline := time.Now().Add(closeGrace)
	held := live[:0]
	for _, s := range live {
		if lockBy(ctx, deadline, s) {
			held = append(held, s)
		}
	}
	return func() {
		for _, s := range held {
			s.call.Unlock()
		}
	}
}

// lockBy takes s.call, polling, until ctx is done or the deadline passes.
// Why poll: a mutex cannot be waited for with a timeout, and this runs
// once per Close, for the few calls in progress at that moment.
func lockBy(ctx context.Context, deadline time.Time, s *service) bool {
	for !s.call.TryLock() {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
