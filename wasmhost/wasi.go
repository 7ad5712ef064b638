package wasmhost

import (
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// nanosleep is an instance's WASI sleep: wazero's poll_oneoff calls it for
// a subscription to a relative clock, which is what time.Sleep in a Go
// guest (and a sleep in Rust, Zig or TinyGo) compiles to.
//
// Why not wazero's own (ModuleConfig.WithSysNanosleep): it sleeps the whole
// duration inside the host function. The event budget cancels the call's
// context, but wazero looks at that context only in guest code (function
// entries and loop back-edges), so a guest that slept 20 s held its room for
// 20 s whatever the budget, and Module.Close waited for it too. This one
// returns when the duration is over, and otherwise ends the call as soon as
// the budget runs out or the module is closed, the way wazero ends a call
// whose context is done: by unwinding the guest with a *sys.ExitError, which
// callError classifies as ErrBudget or ErrClosed. Capping the sleep at what
// is left of the budget and returning would not do: the guest would go on
// (a Go guest loops back to sleep again) until its next check.
func (s *service) nanosleep(ns int64) {
	if ns <= 0 {
		return
	}
	var budget <-chan struct{} // nil, never ready, without a budget
	if s.budget.ctx != nil {
		// The context of the call in progress: host functions run on
		// the goroutine of the call, after its beginCall.
		budget = s.budget.ctx.Done()
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	if s.onSleep != nil {
		s.onSleep()
	}
	select {
	case <-t.C:
	case <-budget:
		panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
	case <-s.module.done:
		panic(sys.NewExitError(sys.ExitCodeContextCanceled))
	}
}

// processStart anchors the monotonic clock guests read.
var processStart = time.Now()

// nanotime is an instance's WASI monotonic clock: the process's, as
// wazero's own (ModuleConfig.WithSysNanotime) reads it, plus clockOffset.
// The offset is zero unless the instance restored a raw snapshot: its
// memory then holds readings of the old instance's clock (a Go guest's
// timers, a Rust Instant), which after a restart may lie far ahead of this
// process's clock. The offset makes the clock go on from the snapshot's
// reading, plus the time since, instead of jumping back.
func (s *service) nanotime() int64 {
	return int64(time.Since(processStart)) + s.clockOffset
}
