// Package routines counts the goroutines of a server so that its shutdown
// can wait for every one, as nats-server's startGoRoutine does: one owner
// starts them, counts them, and refuses new work once shutdown has begun.
//
// Two kinds of work are counted. Top-level work (a new connection, a new
// room, a background sweeper) asks with [Owner.Go] or [Owner.Hold] and is
// refused once [Owner.Close] has been called. Work started by something
// already counted (a connection's reader and writer, a room's timer) uses
// [Owner.Spawn] and [Owner.AfterFunc], which are never refused: a
// connection being closed at shutdown still needs a writer for its close
// frame. Because its parent's count is held while it starts, the count is
// never zero then, which is what sync.WaitGroup requires of an Add that
// races Wait.
package routines

import (
	"sync"
	"time"
)

// Owner counts goroutines and lifetimes. The zero value is not usable;
// call [New].
type Owner struct {
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
	quit    chan struct{}
	done    chan struct{}
}

// New returns an owner that accepts work.
func New() *Owner {
	return &Owner{quit: make(chan struct{}), done: make(chan struct{})}
}

// Hold counts one lifetime (a connection, a room) and reports whether it
// may begin: false once Close has been called. Every true must be matched
// by one Release.
func (o *Owner) Hold() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return false
	}
	o.wg.Add(1)
	return true
}

// Release ends a lifetime counted by Hold.
func (o *Owner) Release() { o.wg.Done() }

// Go runs f on a new counted goroutine and reports whether it did: false
// once Close has been called.
func (o *Owner) Go(f func()) bool {
	if !o.Hold() {
		return false
	}
	go func() {
		defer o.wg.Done()
		f()
	}()
	return true
}

// Spawn runs f on a new counted goroutine, even after Close. Only work that
// is itself counted (a holder, or a goroutine of the owner's) may call it,
// so that the count cannot be zero meanwhile.
func (o *Owner) Spawn(f func()) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		f()
	}()
}

// AfterFunc is time.AfterFunc with the callback counted from now until it
// has run, or until a Stop that prevents it. Like Spawn, only counted work
// may call it. Use the returned Timer's Stop through [Owner.Stop].
func (o *Owner) AfterFunc(d time.Duration, f func()) *time.Timer {
	o.wg.Add(1)
	return time.AfterFunc(d, func() {
		defer o.wg.Done()
		f()
	})
}

// Stop stops a timer from AfterFunc and, if that prevented its callback,
// drops its count. It reports whether it did. A nil t is ignored.
func (o *Owner) Stop(t *time.Timer) bool {
	if t != nil && t.Stop() {
		o.wg.Done()
		return true
	}
	return false
}

// Close refuses new work from now on and reports whether this call did it
// (later calls return false and do nothing). The first call runs during
// (if not nil) counted, so that during may Spawn work for what is still
// running (end every room, say) however fast that ends. Once every counted
// goroutine and lifetime has ended, it runs after (if not nil) and then
// closes [Owner.Done].
func (o *Owner) Close(during, after func()) bool {
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return false
	}
	o.closing = true
	close(o.quit)
	o.wg.Add(1) // during's own count
	o.mu.Unlock()
	if during != nil {
		during()
	}
	// This goroutine is the owner's own and ends with the last counted one.
	go func() {
		o.wg.Wait()
		if after != nil {
			after()
		}
		close(o.done)
	}()
	o.wg.Done()
	return true
}

// Closing reports whether Close has been called.
func (o *Owner) Closing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closing
}

// Quit is closed when Close is called: background loops return on it.
func (o *Owner) Quit() <-chan struct{} { return o.quit }

// Done is closed once Close has been called and every counted goroutine
// and lifetime has ended.
func (o *Owner) Done() <-chan struct{} { return o.done }
