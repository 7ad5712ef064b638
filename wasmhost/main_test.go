package wasmhost

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newRoom returns the recorder of tests that call a service's callbacks
// themselves: a stateroomtest.Room that runs a no-op service, so that its
// record holds exactly what the service under test did, and its Connect
// adds clients to the room (for recipients to reach, and for Close to
// close) without telling the service under test. Tests that want the
// runtime's order of events (a closed client's Disconnect after the event)
// bind a room to the service under test instead.
func newRoom() *stateroomtest.Room {
	return stateroomtest.NewRoom("test-room", stateroom.BaseService{})
}

// budgetDeadline is how long a test waits for a call that an event budget
// of budget must stop: ten budgets, and at least two seconds. If the budget
// were broken such a call would run until go test's timeout (30 minutes);
// with the deadline the test fails within seconds and says why. The floor
// is for loaded machines under -race: a looping guest was seen to take
// over a second to stop under a 100 ms budget there (the budget's timer and
// wazero's watcher goroutine wait for a CPU), while a working budget
// normally stops it in about the budget.
func budgetDeadline(budget time.Duration) time.Duration {
	return max(10*budget, 2*time.Second)
}

// withinBudget returns a func that runs f, a call into a service of m that
// the budget must stop, and re-raises in the caller's goroutine whatever f
// panicked with (so mustFault and catchFault work on it as on f). If f is
// still running budgetDeadline after it started, the test fails:
// withinBudget closes m, which stops a guest caught in a loop or a sleep,
// to leave no goroutine behind.
func withinBudget(t testing.TB, m *Module, f func()) func() {
	return func() {
		t.Helper()
		if m.set.budget <= 0 {
			t.Fatal("withinBudget on a module without a budget")
		}
		limit := budgetDeadline(m.set.budget)
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }() // nil unless f panicked
			f()
		}()
		select {
		case v := <-done:
			if v != nil {
				panic(v)
			}
		case <-time.After(limit):
			msg := fmt.Sprintf("the guest call still ran %v after it began, under a %v event budget: the budget did not stop it", limit, m.set.budget)
			_ = m.Close(context.Background())
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				msg += "; nor did Module.Close within 5 s (the call is left running)"
			}
			t.Fatal(msg)
		}
	}
}

// testOptions are the Options of most tests: no cache on disk, logs
// discarded.
func testOptions() Options {
	return Options{DisableCache: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// loadGuest loads testdata/<name>.wasm and closes it when the test ends.
func loadGuest(t testing.TB, name string, opts Options) *Module {
	t.Helper()
	m, err := Load(context.Background(), filepath.Join("testdata", name+".wasm"), opts)
	if err != nil {
		t.Fatalf("Load %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// newService starts a room of m and closes it when the test ends.
func newService(t testing.TB, m *Module) *service {
	t.Helper()
	svc, err := m.NewService("test-room")
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	s := svc.(*service)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// catchFault runs f and returns the *stateroom.Fault it panicked with, or
// nil if it returned normally. Any other panic fails the test.
func catchFault(t testing.TB, f func()) (fault *stateroom.Fault) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			var ok bool
			if fault, ok = r.(*stateroom.Fault); !ok {
				t.Fatalf("panicked with %T %v, want *stateroom.Fault", r, r)
			}
		}
	}()
	f()
	return nil
}

// mustFault runs f, which must fault with reason and an error matching
// target.
func mustFault(t testing.TB, reason string, target error, f func()) *stateroom.Fault {
	t.Helper()
	fault := catchFault(t, f)
	if fault == nil {
		t.Fatalf("no fault, want %q", reason)
	}
	if fault.Reason != reason {
		t.Errorf("fault reason %q, want %q (err: %v)", fault.Reason, reason, fault.Err)
	}
	if !errors.Is(fault.Err, target) {
		t.Errorf("fault error %v, want one wrapping %v", fault.Err, target)
	}
	if len(fault.Reason) > 123 {
		t.Errorf("fault reason is %d bytes, a close reason holds 123", len(fault.Reason))
	}
	return fault
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBuffer is a slog handler's writer that tests can read while guests
// write.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines that contain every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	var out []string
	for line := range strings.Lines(b.String()) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
