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
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sent is one Room.Send a fake room recorded.
type sent struct {
	To      stateroom.Recipient
	Payload stateroom.Payload
}

func (s sent) String() string {
	kind := "text"
	if s.Payload.Binary {
		kind = "bytes"
	}
	return fmt.Sprintf("%v %s %x", s.To, kind, s.Payload.Data)
}

// fakeRoom records what a service does with its room.
type fakeRoom struct {
	sends  []sent
	timers []time.Duration
}

func (r *fakeRoom) ID() string { return "test-room" }

func (r *fakeRoom) Send(to stateroom.Recipient, p stateroom.Payload) {
	// Copy: the payload aliases guest memory, valid only during Send.
	r.sends = append(r.sends, sent{to, stateroom.Payload{Data: bytes.Clone(p.Data), Binary: p.Binary}})
}

func (r *fakeRoom) SetTimer(d time.Duration) { r.timers = append(r.timers, d) }

func (r *fakeRoom) reset() { r.sends, r.timers = nil, nil }

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
