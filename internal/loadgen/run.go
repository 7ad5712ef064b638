package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pollInterval is how often a run checks its conditions (everyone joined,
// every frame delivered). Measurements use the readers' own timestamps, so
// it only bounds how late the run notices, not what it measures.
const pollInterval = 5 * time.Millisecond

// run is the state every mode shares: its options, its clock and its
// progress reporting.
type run struct {
	o     Options
	mode  string
	start time.Time

	mu        sync.Mutex // guards phase and lastEmit
	phase     string
	lastEmit  time.Time
	doneCount func() int64
	total     int64
}

func newRun(mode string, o Options) *run {
	return &run{o: o, mode: mode, start: time.Now()}
}

// since returns the time since the run started, monotonic.
func (r *run) since() time.Duration { return time.Since(r.start) }

// setPhase names what the run does now and how progress is counted.
func (r *run) setPhase(phase string, total int64, done func() int64) {
	r.mu.Lock()
	r.phase, r.total, r.doneCount = phase, total, done
	r.mu.Unlock()
	r.emit(true)
}

// emit calls Options.Progress if an interval has passed (or force).
func (r *run) emit(force bool) {
	if r.o.Progress == nil {
		return
	}
	r.mu.Lock()
	now := time.Now()
	if !force && now.Sub(r.lastEmit) < r.o.ProgressInterval {
		r.mu.Unlock()
		return
	}
	r.lastEmit = now
	p := Progress{Mode: r.mode, Phase: r.phase, Total: r.total, Elapsed: now.Sub(r.start)}
	done := r.doneCount
	r.mu.Unlock()
	if done != nil {
		p.Done = done()
	}
	r.o.Progress(p)
}

// wait polls cond until it holds (true) or ctx ends (false), reporting
// progress meanwhile.
func (r *run) wait(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		r.emit(false)
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}

// forEach calls fn(i) for every i in [0, n) from at most concurrency
// goroutines at once, reporting progress as i's complete. It stops at the
// first error and returns it, or ctx's error when ctx ends first; it
// returns when every call has returned.
func (r *run) forEach(parent context.Context, phase string, n, concurrency int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		next, done atomic.Int64
		errOnce    sync.Once
		firstErr   error
		wg         sync.WaitGroup
	)
	r.setPhase(phase, int64(n), done.Load)
	for range min(concurrency, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := fn(ctx, int(i)); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	r.wait(ctx, func() bool { return done.Load() == int64(n) })
	wg.Wait()
	if err := timeUp(parent); err != nil && done.Load() < int64(n) {
		// The run's time is up: the calls' errors are its echoes.
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	if done.Load() < int64(n) {
		return ctx.Err()
	}
	return nil
}

// timeUp returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline has passed even if its timer has not fired yet: a socket
// deadline set from ctx may fire first.
func timeUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
