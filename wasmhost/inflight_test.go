package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
)

// TestCloseDuringCall closes Modules while their guests are anywhere in a
// call: entering a WASI sleep (poll_oneoff reads the instance's WASI state
// before it sleeps), asleep, or in guest code, with and without a budget.
// Under -race, wazero's release of that state raced the WASI call when
// Close did not wait for calls in progress (see inflight.go). Every call
// must end, either normally or with the module-closed fault, and the
// memory of each instance must stay readable until its service closes.
func TestCloseDuringCall(t *testing.T) {
	for _, budget := range []time.Duration{time.Minute, NoBudget} {
		for i := range 20 {
			opts := testOptions()
			opts.EventBudget = budget
			m, err := Load(context.Background(), filepath.Join("testdata", "relay.wasm"), opts)
			if err != nil {
				t.Fatal(err)
			}
			s := newService(t, m)
			cmd := []string{"w", "s"}[i%2] // 50 ms or 20 s in poll_oneoff
			var wg sync.WaitGroup
			wg.Add(1)
			var fault *stateroom.Fault
			go func() {
				defer wg.Done()
				defer func() { fault, _ = recover().(*stateroom.Fault) }()
				command(s, newRoom(), cmd)
			}()
			if i%4 >= 2 {
				time.Sleep(time.Duration(i) * time.Millisecond) // somewhere in the call, not always asleep yet
			}
			if err := m.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if fault != nil && (fault.Reason != "wasm module closed" || !errors.Is(fault.Err, ErrClosed)) {
				t.Fatalf("budget %v, round %d: fault %q (%v), want none or the module-closed fault", budget, i, fault.Reason, fault.Err)
			}
			if !s.closed {
				_ = memoryBytes(t, s) // still mapped: the service has not let go
			}
		}
	}
}

// memoryBytes returns a copy of the whole memory of s.
func memoryBytes(t testing.TB, s *service) []byte {
	t.Helper()
	b, ok := s.mem.Read(0, s.mem.Size())
	if !ok {
		t.Fatal("cannot read the instance's memory")
	}
	return bytes.Clone(b)
}

// TestNoInstanceAfterClose checks that a Module being closed starts no
// instance.
func TestNoInstanceAfterClose(t *testing.T) {
	m, err := Load(context.Background(), filepath.Join("testdata", "relay.wasm"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Close(context.Background())
	if _, err := m.instantiate("late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("instantiate after Close: %v, want ErrClosed", err)
	}
}
