package routines

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCloseRefusesAndWaits: after Close, Go and Hold are refused, Spawn by
// a holder still runs, and Done closes only once every counted goroutine,
// lifetime and timer callback has ended, after the after hook.
func TestCloseRefusesAndWaits(t *testing.T) {
	o := New()
	if !o.Hold() {
		t.Fatal("Hold refused before Close")
	}
	release := make(chan struct{})
	var ran atomic.Int32
	if !o.Go(func() { <-release; ran.Add(1) }) {
		t.Fatal("Go refused before Close")
	}
	o.AfterFunc(10*time.Millisecond, func() { ran.Add(1) })
	stopped := o.AfterFunc(time.Hour, func() { t.Error("a stopped timer fired") })
	if !o.Stop(stopped) {
		t.Fatal("Stop of a pending timer reported false")
	}

	var afterRan atomic.Bool
	if !o.Close(nil, func() { afterRan.Store(true) }) {
		t.Fatal("first Close reported false")
	}
	if o.Close(nil, nil) {
		t.Fatal("second Close reported true")
	}
	if o.Hold() || o.Go(func() {}) {
		t.Fatal("Hold or Go accepted after Close")
	}
	select {
	case <-o.Quit():
	default:
		t.Fatal("Quit not closed by Close")
	}
	o.Spawn(func() { <-release; ran.Add(1) }) // the holder may still spawn
	select {
	case <-o.Done():
		t.Fatal("Done closed while work was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-o.Done():
		t.Fatal("Done closed while a lifetime was held")
	case <-time.After(50 * time.Millisecond):
	}
	o.Release()
	<-o.Done()
	if !afterRan.Load() {
		t.Fatal("Done closed before the after hook ran")
	}
	if n := ran.Load(); n != 3 {
		t.Fatalf("%d of 3 counted functions ran", n)
	}
}

// TestCloseDuringSpawns: work spawned by Close's during hook, for holders
// that end meanwhile, is waited for (the race the owner exists to prevent:
// an Add from zero racing Wait).
func TestCloseDuringSpawns(t *testing.T) {
	for range 200 {
		o := New()
		const holders = 8
		for range holders {
			if !o.Hold() {
				t.Fatal("Hold refused")
			}
		}
		var done atomic.Int32
		var wg sync.WaitGroup
		for range holders {
			wg.Go(o.Release) // holders end while Close runs
		}
		o.Close(func() {
			for range 4 {
				o.Spawn(func() { done.Add(1) })
			}
		}, nil)
		<-o.Done()
		if n := done.Load(); n != 4 {
			t.Fatalf("Done closed with %d of 4 spawned functions run", n)
		}
		wg.Wait()
	}
}
