// Package watchdog bounds how long the callbacks of a service may run in
// the fault tests and the soak, so that a broken event budget fails them in
// seconds instead of hanging them.
//
// Why a test needs more than a read deadline: a WebAssembly guest that
// runs away is stopped only by wasmhost's event budget. Were the budget
// broken, the guest would spin on, and because wazero's compiled code
// cannot be preempted, the Go runtime's next stop-the-world (a GC,
// runtime.ReadMemStats, goleak's stack dump) would wait for it forever: the
// whole test binary would hang until go test's timeout, 30 minutes in CI,
// long after the test that noticed had failed.
//
// Two bounds, for the two ways a budget breaks:
//
//   - [Factory] gives every call into a service a time limit and, past it,
//     fails the test and closes the module, which stops the guest when the
//     module was compiled with wazero's termination checks (the budget's
//     timer or context failed, say). It reports which event of which room
//     ran away.
//   - [InChild] runs a whole test in a child process killed past a
//     deadline: the only bound that holds when nothing in the process can
//     run any more (a module without termination checks, whose runaway
//     wedges the runtime before Factory's timer gets to fire).
package watchdog

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// DefaultGrace is Options.Grace when zero. wazero checks for a closed
// module at every call and loop back-edge of a guest compiled with a
// budget, so a guest it can stop stops at once; the rest is slack for a
// loaded machine.
const DefaultGrace = 5 * time.Second

// Options says what the watchdog does with a callback that overruns.
type Options struct {
	// Limit is how long one callback may run: ten times the module's
	// event budget, say, so that only a budget that did not act trips it.
	Limit time.Duration
	// Overrun is told of each callback still running after Limit (a
	// test's t.Errorf, the soak's list of failures). It must not block.
	Overrun func(error)
	// Stop is called after Overrun to end the runaway call: closing the
	// wasmhost.Module makes wazero stop its guests when the module has a
	// budget. Nil means nothing can stop it. If the call has not returned
	// Grace later, the watchdog panics: that ends the test binary at
	// once, with the reason, rather than at go test's timeout.
	Stop func()
	// Grace is how long a call has to return after Stop. Zero means
	// DefaultGrace.
	Grace time.Duration
}

// Factory wraps f so that every callback of the services it makes runs
// under the watchdog, and so does NewService (a wasm instance's start runs
// guest code too). The services keep the optional capabilities the
// runtime looks for (io.Closer, stateroom.MemoryReporter, and
// stateroom.Snapshotter when the wrapped service has it, its calls
// watched too: a wasm instance's Snapshot and Restore run guest code).
func Factory(f stateroom.Factory, opts Options) stateroom.Factory {
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	return stateroom.FactoryFunc(func(roomID string) (svc stateroom.Service, err error) {
		opts.guard(roomID, "start", func() { svc, err = f.NewService(roomID) })
		if err != nil {
			return nil, err
		}
		w := &service{inner: svc, room: roomID, opts: opts}
		// Only a Snapshotter may look like one: the runtime saves and
		// restores a room whose service asserts to it, and a wrapper that
		// always did would make every service durable.
		if sn, ok := svc.(stateroom.Snapshotter); ok {
			return &snapshotService{service: w, sn: sn}, nil
		}
		return w, nil
	})
}

// guard runs call, the event of room, watching it for as long as it runs.
func (o Options) guard(room, event string, call func()) {
	done := make(chan struct{})
	t := time.AfterFunc(o.Limit, func() { o.overrun(room, event, done) })
	defer func() {
		t.Stop()
		close(done) // also when call panics, as a faulting guest does
	}()
	call()
}

// overrun runs on the timer's goroutine, which the runaway call does not
// hold up.
func (o Options) overrun(room, event string, done <-chan struct{}) {
	select {
	case <-done:
		return // returned just as the timer fired
	default:
	}
	o.Overrun(fmt.Errorf("watchdog: the %s event of room %q is still running after %v: the event budget did not stop it", event, room, o.Limit))
	if o.Stop != nil {
		o.Stop()
	}
	select {
	case <-done:
	case <-time.After(o.Grace):
		panic(fmt.Sprintf("watchdog: the %s event of room %q is still running %v after the %v limit, and nothing stops it: ending the test binary now, since the runtime's next stop-the-world would hang it (the event budget is broken)", event, room, o.Grace, o.Limit))
	}
}

// service runs each callback of inner under the watchdog.
type service struct {
	inner stateroom.Service
	room  string
	opts  Options
}

func (s *service) guard(event string, call func()) { s.opts.guard(s.room, event, call) }

func (s *service) Init(room stateroom.Room, ev stateroom.InitEvent) {
	s.guard("Init", func() { s.inner.Init(room, ev) })
}

func (s *service) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	s.guard("Connect", func() { s.inner.Connect(room, ev) })
}

func (s *service) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	s.guard("Disconnect", func() { s.inner.Disconnect(room, ev) })
}

func (s *service) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	s.guard("Message", func() { s.inner.Message(room, ev) })
}

func (s *service) Timer(room stateroom.Room, ev stateroom.TimerEvent) {
	s.guard("Timer", func() { s.inner.Timer(room, ev) })
}

// Close closes the inner service if it is an io.Closer: a wasm instance
// must be released when its room ends.
func (s *service) Close() error {
	if c, ok := s.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// MemoryBytes reports the inner service's memory, or 0 if it reports none.
func (s *service) MemoryBytes() int64 {
	if m, ok := s.inner.(stateroom.MemoryReporter); ok {
		return m.MemoryBytes()
	}
	return 0
}

// snapshotService is a service wrapper for a stateroom.Snapshotter.
type snapshotService struct {
	*service
	sn stateroom.Snapshotter
}

// Snapshot runs the inner service's Snapshot under the watchdog.
func (s *snapshotService) Snapshot() (b []byte, err error) {
	s.guard("Snapshot", func() { b, err = s.sn.Snapshot() })
	return b, err
}

// Restore runs the inner service's Restore under the watchdog.
func (s *snapshotService) Restore(b []byte) (err error) {
	s.guard("Restore", func() { err = s.sn.Restore(b) })
	return err
}

// childEnv marks the child process of [InChild]; its value is the name of
// the test the child runs.
const childEnv = "STATEROOM_WATCHDOG_CHILD"

// InChild runs the calling test in a child process, the test binary again
// with -test.run selecting that test alone, and fails t if the child fails
// or is still running after deadline (it then gets SIGQUIT, whose goroutine
// dump shows where it hung, and SIGKILL 5 s later). The child's output is
// logged on failure, or with -test.v. InChild returns true in the child,
// which runs the test's body, and false in the parent, which returns:
//
//	func TestGuestFaults(t *testing.T) {
//		if !watchdog.InChild(t, time.Minute) {
//			return
//		}
//		...
//
// Call it first, before the test starts anything it would have to clean
// up. It needs a top-level test: the child runs every subtest.
func InChild(t *testing.T, deadline time.Duration) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("watchdog: finding the test binary to run %s in a child: %v", t.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v=true")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
	began := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(began).Round(time.Millisecond)
	switch {
	case ctx.Err() != nil:
		t.Fatalf("watchdog: %s was still running after %v in its child process and was killed: a runaway that nothing in the process could stop (is the event budget broken?). Its output:\n%s", t.Name(), deadline, out)
	case err != nil:
		t.Fatalf("watchdog: %s failed in its child process (%v, after %v). Its output:\n%s", t.Name(), err, took, out)
	case testing.Verbose():
		t.Logf("ran in a child process in %v; its output:\n%s", took, out)
	}
	return false
}
