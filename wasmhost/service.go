package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// serviceKey is the context key under which a call into a guest carries its
// service, for hostSend.
type serviceKey struct{}

// service is one room's instance of a Module: it turns the callbacks of
// stateroom.Service into ABI events, and the guest's stateroom_send calls
// into room.Send, room.SetTimer and room.Close.
//
// Its methods are called one at a time (the stateroom.Service contract), so
// it needs no lock.
type service struct {
	module *Module
	logger *slog.Logger // tagged with the room id
	out    *guestOutput

	// ctx carries the service to hostSend: wazero hands host functions
	// the context of the call, so every call into the guest derives from
	// it. Why not a map from api.Module: a context value costs no lock and
	// no bookkeeping when instances come and go.
	ctx context.Context

	mod                api.Module
	mem                api.Memory
	linear             *linearMemory // mem's mapping (memory.go); nil when wazero allocated it
	malloc, recv, free api.Function
	stack              [2]uint64 // parameters and results of CallWithStack
	buf                eventBuffer

	budget struct { // the per-event deadline; see beginCall
		ctx    context.Context
		cancel context.CancelCauseFunc
		timer  *time.Timer
	}
	// call is held during every call into the guest, and abort is the
	// budget context's cancel, for Module.Close to stop the call and wait
	// for it (inflight.go).
	call  sync.Mutex
	abort atomic.Pointer[context.CancelCauseFunc]

	room    stateroom.Room // the room of the callback in progress; nil between callbacks
	sendErr error          // why hostSend failed the current call
	closed  bool

	// warnedClose is set once a Close from the guest was ignored and
	// logged: see closeClient.
	warnedClose bool

	// onSleep, when a test sets it, is called as a WASI sleep begins (see
	// nanosleep), so that the test can act while the guest is asleep.
	onSleep func()

	// Snapshots (snapshot.go). snapshotFn and restoreFn are the guest's
	// exports, memberFn its stateroom_member (members.go), each looked up
	// on first use (see exported; Module.snapExports and memberExport say
	// whether the module has them). clients are the clients the guest was
	// told of (Connect without Disconnect yet), which a raw snapshot
	// carries so that a restored guest can learn they left. rawRestored:
	// a raw snapshot was restored, so Init is not delivered a second
	// time; clientsGone: it came from another process, so Init tells the
	// guest those clients left instead (see snapshot.go). clockOffset is added
	// to the guest's monotonic clock so that it goes on from the restored
	// snapshot's reading. broken is why the instance must not run another
	// event (a snapshot or restore trapped or ran past the budget, or a
	// restore failed halfway); the next event faults with it.
	snapshotFn, restoreFn api.Function
	memberFn              api.Function
	clients               map[stateroom.ClientID]struct{}
	rawRestored           bool
	clientsGone           bool
	clockOffset           int64
	broken                error
	globals               []api.MutableGlobal // resolved on first use
	rawPages              []rawPage           // the last raw snapshot, page by page (snapshot.go)
}

var _ stateroom.Service = (*service)(nil)

// instantiate starts one instance: instantiate, run _initialize on a
// reactor, check the ABI version, write the room id.
func (m *Module) instantiate(roomID string) (*service, error) {
	return m.instantiateWith(roomID, nil)
}

// instantiateWith is instantiate that calls initialized, when not nil,
// after the ABI check and before the room id is written: the probe
// instance of Load takes the module's base memory image there.
func (m *Module) instantiateWith(roomID string, initialized func(*service)) (*service, error) {
	logger := m.set.logger.With("room", roomID)
	s := &service{module: m, logger: logger, out: newGuestOutput(logger)}
	s.ctx = context.WithValue(context.Background(), serviceKey{}, s)
	if !m.track(s) {
		return nil, fmt.Errorf("%w: cannot start room %q", ErrClosed, roomID)
	}
	ctx := s.beginCall()
	defer s.endCall()

	cfg := m.config.WithStdout(&s.out.stdout).WithStderr(&s.out.stderr).WithNanosleep(s.nanosleep).
		WithNanotime(s.nanotime, 1)
	if initialized != nil {
		cfg = probeEnvironment(cfg)
	}
	linear, err := m.newLinearMemory()
	if err != nil {
		m.untrack(s)
		s.stopBudget()
		return nil, fmt.Errorf("cannot start room %q: %w", roomID, err)
	}
	if linear != nil {
		ctx = experimental.WithMemoryAllocator(ctx, linear)
	}
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		linear.discard() // wazero keeps nothing of a failed instance
		m.untrack(s)
		s.stopBudget()
		s.out.Flush()
		if m.closed.Load() {
			return nil, fmt.Errorf("%w: cannot start room %q", ErrClosed, roomID)
		}
		return nil, fmt.Errorf("%w: %s cannot be instantiated: %w", ErrInvalid, m.name, err)
	}
	s.mod = mod
	s.mem = mod.ExportedMemory("memory")
	s.linear = linear
	s.malloc = mod.ExportedFunction("stateroom_malloc")
	s.recv = mod.ExportedFunction("stateroom_recv")
	s.free = mod.ExportedFunction("stateroom_free")

	err = nil
	if m.reactor {
		if callErr := mod.ExportedFunction("_initialize").CallWithStack(ctx, nil); callErr != nil {
			err = s.callError(ctx, "_initialize", callErr)
		}
	}
	if err == nil {
		err = s.checkABI(ctx)
	}
	if err == nil && initialized != nil {
		initialized(s)
	}
	if err == nil {
		err = s.writeRoomID(ctx, roomID)
	}
	if err == nil && m.image != nil && m.image.file != nil {
		// What this start wrote, for pre-faulting it in the instances
		// to come (memory_linux.go, prefaultStart): once for the probe,
		// once for the first room, nothing after.
		m.image.file.learnStart(s, initialized != nil)
	}
	if err != nil {
		s.close()
		if tail := s.out.StderrTail(); tail != "" {
			err = fmt.Errorf("%w\nlast lines of its stderr:\n%s", err, tail)
		}
		return nil, err
	}
	return s, nil
}

// exported returns the guest's export name, looking it up into *fn on
// first use. wazero builds a call engine, with its own stack, for each
// function looked up: looking up the optional exports that most instances
// never call (snapshot, restore, members) at instantiation cost a Go-guest
// room about 35 KB of heap (docs/PERFORMANCE.md, Go-guest density). The
// caller knows from the Module that the export exists.
func (s *service) exported(fn *api.Function, name string) api.Function {
	if *fn == nil {
		*fn = s.mod.ExportedFunction(name)
	}
	return *fn
}

// probeEnvironment gives the probe instance, whose memory after
// _initialize is the base raw snapshots are taken against (Module.base),
// the same randomness and clocks in every process: a raw snapshot stores
// only what differs from the base, and is restored onto the base of
// another process after a restart. A base taken with the process's own
// entropy (a Go guest's runtime seeds itself from random_get in
// _initialize) would differ there, and a page the room left as its base
// was, or a chunk stored as its difference from the base, would come back
// as another process's bytes (a map's hash seed, silently). Rooms keep
// their own entropy and clocks; only the base is fixed. The clocks advance
// by a microsecond a reading, so a guest that waits for time to pass does
// not spin forever.
func probeEnvironment(cfg wazero.ModuleConfig) wazero.ModuleConfig {
	var now int64 = 1_700_000_000e9 // a fixed instant, as unix ns
	tick := func() int64 { now += 1000; return now }
	return cfg.WithRandSource(rand.NewChaCha8([32]byte{'s', 't', 'a', 't', 'e', 'r', 'o', 'o', 'm'})).
		WithWalltime(func() (int64, int32) { t := tick(); return t / 1e9, int32(t % 1e9) }, 1).
		WithNanotime(tick, 1)
}

// writeRoomID does what upstream's host does once at start: malloc a buffer,
// write the room id into it, free it, without telling the guest. Upstream
// guests ignore it; guests built with our Go SDK keep the bytes of a buffer
// freed before their first event as their room id, so the same service code
// learns its room id natively and as WebAssembly without an ABI extension.
func (s *service) writeRoomID(ctx context.Context, roomID string) error {
	n := uint32(len(roomID))
	if n == 0 {
		return nil
	}
	ptr, err := s.guestMalloc(ctx, n)
	if err != nil {
		return err
	}
	s.mem.WriteString(ptr, roomID) // fits: guestMalloc checked the range
	return s.guestFree(ctx, ptr, n)
}

// beginCall returns the context of one event (or of instantiation): the
// service's, under the budget when there is one. Every beginCall is paired
// with an endCall.
//
// Why a timer re-armed per event rather than a context.WithTimeout per
// event: the timer and its context are made once per instance, which saves
// allocations and a timer-heap insertion on every event (see
// BenchmarkEvent). The timer's function cancels the context with ErrBudget
// as the cause; wazero then stops the guest at its next check.
func (s *service) beginCall() context.Context {
	s.call.Lock()
	d := s.module.set.budget
	if d <= 0 {
		return s.ctx
	}
	if s.budget.timer == nil || s.budget.ctx.Err() != nil {
		// First call, or the timer fired after the last call returned:
		// that context is cancelled for good, so make a new one.
		s.stopBudget()
		ctx, cancel := context.WithCancelCause(s.ctx)
		s.budget.ctx, s.budget.cancel = ctx, cancel
		s.abort.Store(&cancel)
		s.budget.timer = time.AfterFunc(d, func() { cancel(ErrBudget) })
		return ctx
	}
	s.budget.timer.Reset(d)
	return s.budget.ctx
}

// endCall disarms the budget of the call that returned.
func (s *service) endCall() {
	if s.budget.timer != nil {
		s.budget.timer.Stop()
	}
	s.call.Unlock()
}

// stopBudget releases the budget's timer and context.
func (s *service) stopBudget() {
	if s.budget.timer != nil {
		s.budget.timer.Stop()
		s.budget.cancel(nil)
		s.budget.timer = nil
	}
}

// Init delivers the Init event. After the Restore of a raw snapshot it
// does not: the restored memory is that of a guest that had its Init
// already, and upstream's guests run their service's init on every Init.
// If the snapshot came from another process, it delivers instead a
// Disconnect for each client the guest knew of, since their connections
// are gone (they reconnect and get a Connect, as for any restored room);
// from this process it is a hibernated room waking, whose clients are
// still there. A guest that restored itself through stateroom_restore
// gets Init as usual; the ABI's Init carries no flag, so the Go SDK
// remembers the restore and sets InitEvent.Restored itself. Before that
// Init, a guest that exports stateroom_member is told of each client in
// InitEvent.Clients (members.go).
func (s *service) Init(room stateroom.Room, ev stateroom.InitEvent) {
	if s.rawRestored {
		s.rawRestored = false
		if s.clientsGone {
			s.clientsGone = false
			for _, id := range s.clientList() {
				s.Disconnect(room, stateroom.DisconnectEvent{Client: id})
			}
		}
		return
	}
	s.members(ev.Clients)
	s.deliver(room, abi.Event{Kind: abi.EventInit})
}

// Connect delivers a Connect event.
func (s *service) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	if s.clients == nil {
		s.clients = make(map[stateroom.ClientID]struct{})
	}
	s.clients[ev.Client] = struct{}{}
	s.deliver(room, abi.Event{Kind: abi.EventConnect, Client: ev.Client})
}

// Disconnect delivers a Disconnect event.
func (s *service) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	delete(s.clients, ev.Client)
	s.deliver(room, abi.Event{Kind: abi.EventDisconnect, Client: ev.Client})
}

// Message delivers a Message event.
func (s *service) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	s.deliver(room, abi.Event{Kind: abi.EventMessage, Client: ev.Client, Payload: ev.Payload})
}

// Timer delivers a Timer event.
func (s *service) Timer(room stateroom.Room, _ stateroom.TimerEvent) {
	s.deliver(room, abi.Event{Kind: abi.EventTimer})
}

// MemoryBytes is the size of the instance's linear memory, for the server's
// room listing (stateroom.MemoryReporter). It is called with the room locked,
// so never during a call into the guest.
func (s *service) MemoryBytes() int64 {
	if s.closed {
		return 0
	}
	return int64(s.mem.Size())
}

// Close closes the instance. It is idempotent; callbacks after it do
// nothing.
func (s *service) Close() error {
	s.close()
	return nil
}

func (s *service) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.module.untrack(s)
	s.stopBudget()
	_ = s.mod.Close(context.Background()) // an instance's Close only releases it
	s.linear.release()                    // after wazero's Free, which Close called: the memory goes now
	s.out.Flush()
}

// deliver hands one event to the guest, or faults the instance.
func (s *service) deliver(room stateroom.Room, ev abi.Event) {
	if s.closed {
		return // never call into an instance after a fault
	}
	if s.broken != nil {
		s.fault(s.broken)
	}
	s.room = room
	var err error
	if m := s.module.metrics; m != nil {
		start := time.Now()
		err = s.handle(ev)
		observeSince(m.event[ev.Kind], start)
	} else {
		err = s.handle(ev)
	}
	s.room = nil
	if err != nil {
		s.fault(err)
	}
}

// handle runs the ABI's delivery under one event budget: write the event
// into guest memory, stateroom_recv. The buffer is the room's retained one
// (see eventBuffer), so the common event is one guest call, not the
// ABI's malloc, recv and free.
func (s *service) handle(ev abi.Event) error {
	ctx := s.beginCall()
	defer s.endCall()

	size := abi.EventSize(ev)
	if size > math.MaxUint32 {
		return fmt.Errorf("%w: a %s event of %d bytes does not fit a 32-bit guest", ErrMalloc, ev.Kind, size)
	}
	n := uint32(size)
	ptr, oneOff, err := s.eventBuffer(ctx, n)
	if err != nil {
		return err
	}
	if n > 0 {
		buf, ok := s.mem.Read(ptr, n)
		if !ok { // cannot happen: guestMalloc checked it and memory never shrinks
			return s.mallocError(n, ptr)
		}
		// Encode straight into guest memory: EventSize is exact, so the
		// capped slice never reallocates.
		abi.AppendEvent(buf[:0:n], ev)
	}

	s.stack[0], s.stack[1] = uint64(ptr), uint64(n)
	if err := s.recv.CallWithStack(ctx, s.stack[:]); err != nil {
		return s.callError(ctx, "stateroom_recv", err)
	}
	if oneOff {
		return s.guestFree(ctx, ptr, n)
	}
	return nil
}

// hostSend is env.stateroom_send. A malformed send panics: wazero turns a
// host function's panic into an error of the guest call, which unwinds the
// guest and lets handle fault the instance.
func hostSend(ctx context.Context, _ api.Module, stack []uint64) {
	s, _ := ctx.Value(serviceKey{}).(*service)
	if s == nil {
		panic(fmt.Errorf("%w: no room is bound to this call", ErrSend))
	}
	if err := s.send(api.DecodeU32(stack[0]), api.DecodeU32(stack[1])); err != nil {
		s.sendErr = err
		panic(err)
	}
}

// send decodes one MessageFromProcess and routes it. A command that does
// not decode is an error (the guest and the host disagree on the ABI, and
// nothing it says can be trusted), but text that is not valid UTF-8 decodes:
// the room drops it with a warning and counts it, as it does for a native
// service (see package internal/abi).
func (s *service) send(ptr, n uint32) error {
	if s.room == nil {
		return fmt.Errorf("%w: called outside an event (while instantiating, in _initialize, or in stateroom_snapshot, stateroom_restore or stateroom_member); send only while handling stateroom_recv", ErrSend)
	}
	b, ok := s.mem.Read(ptr, n)
	if !ok {
		return fmt.Errorf("%w: %d bytes at %#x run past the guest's %d-byte memory", ErrSend, n, ptr, s.mem.Size())
	}
	cmd, err := abi.DecodeCommand(b)
	if err != nil {
		return fmt.Errorf("%w: %w (bytes: %x)", ErrSend, err, b[:min(len(b), 64)])
	}
	switch cmd.Kind {
	case abi.CommandMessage:
		s.room.Send(cmd.To, cmd.Payload) // Send copies what it keeps
	case abi.CommandSetTimer:
		s.room.SetTimer(time.Duration(cmd.DelayMS) * time.Millisecond)
	case abi.CommandClose:
		s.closeClient(cmd)
	}
	return nil
}

// closeClient carries out a guest's Close, the ABI's extension (see
// internal/abi/ABI.md). A code a service may not use (the Go SDK refuses
// one before sending, so only a hand-written module or another SDK sends
// it) is ignored with a warning rather than faulting the room: it is a bug
// in the guest that harms no client, and natively Room.Close closes nothing
// and returns an error the service is free to ignore; the ABI has no way to
// hand that error back. The warning is logged once per room so that a
// guest that does it on every event cannot flood the log. The code is
// checked here, not left to the room, so that no Room implementation ever
// sees a code the guest may not use.
func (s *service) closeClient(cmd abi.Command) {
	err := stateroom.CheckServiceClose(cmd.Code)
	if err == nil {
		err = s.room.Close(cmd.Client, cmd.Code, cmd.Reason)
	}
	if err != nil && !s.warnedClose {
		s.warnedClose = true
		s.logger.Warn("the wasm guest's Close was ignored (logged once per room)",
			"client", cmd.Client, "code", uint16(cmd.Code), "err", err)
	}
}

// callError classifies the error of a call into the guest.
func (s *service) callError(ctx context.Context, fn string, err error) error {
	if sendErr := s.sendErr; sendErr != nil {
		s.sendErr = nil
		return sendErr
	}
	if exit, ok := errors.AsType[*sys.ExitError](err); ok {
		switch {
		case errors.Is(context.Cause(ctx), ErrBudget):
			return fmt.Errorf("%w: %s ran past the %v budget (Options.EventBudget)", ErrBudget, fn, s.module.set.budget)
		case s.module.closed.Load():
			return fmt.Errorf("%w: %s was stopped", ErrClosed, fn)
		}
		return fmt.Errorf("%w with code %d in %s", ErrExit, exit.ExitCode(), fn)
	}
	if s.module.closed.Load() {
		return fmt.Errorf("%w: %s was stopped: %w", ErrClosed, fn, err)
	}
	return fmt.Errorf("%w in %s, linear memory at %d of %d pages: %w", ErrTrap, fn, s.mem.Size()/pageSize, s.maxPages(), err)
}

// maxPages is the most pages the instance's memory may grow to.
func (s *service) maxPages() uint32 {
	if max, ok := s.mem.Definition().Max(); ok {
		return min(max, s.module.set.memoryPages)
	}
	return s.module.set.memoryPages
}

// fault closes the instance, logs why with the guest's last stderr lines,
// and panics with a *stateroom.Fault for the server.
func (s *service) fault(err error) {
	reason := s.faultReason(err) // reads the memory size: before close
	s.close()
	if m := s.module.metrics; m != nil {
		m.faults.WithLabelValues(reason).Inc()
	}
	s.logger.Error("wasm instance faulted; ending the room", "err", err, "stderr", s.out.StderrTail())
	panic(&stateroom.Fault{Reason: reason, Err: err})
}

// faultReason is the short close reason the room's clients see.
func (s *service) faultReason(err error) string {
	switch {
	case errors.Is(err, ErrBudget):
		return "wasm event budget exceeded"
	case errors.Is(err, ErrTrap) && s.mem.Size()/pageSize >= s.maxPages():
		return "wasm memory limit reached"
	case errors.Is(err, ErrTrap):
		return "wasm trap"
	case errors.Is(err, ErrExit):
		return "wasm guest exited"
	case errors.Is(err, ErrSend):
		return "wasm malformed send"
	case errors.Is(err, ErrMalloc):
		return "wasm malloc failed"
	case errors.Is(err, ErrClosed):
		return "wasm module closed"
	}
	return "wasm fault"
}
