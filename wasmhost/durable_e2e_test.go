package wasmhost_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/store"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestDurableRawE2E drives a module without snapshot exports (the counter
// guest) through the server's durable rooms: it hibernates and wakes with
// its client still connected and its state kept, survives a restart onto
// the same store, and starts fresh, with nothing set aside, under a
// rebuilt module that cannot read the old one's memory.
func TestDurableRawE2E(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	counterWAT, err := os.ReadFile(filepath.Join("testdata", "counter.wat"))
	if err != nil {
		t.Fatal(err)
	}
	var made, closed atomic.Int32 // instances the server asked for, and closed
	start := func(src []byte) (*server.Server, string) {
		mod, err := wasmhost.Compile(ctx, src, wasmhost.Options{DisableCache: true, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mod.Close(ctx) })
		f := stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
			svc, err := mod.NewService(id)
			if err != nil {
				return nil, err
			}
			made.Add(1)
			return counted{svc.(durableService), &closed}, nil
		})
		s, err := server.New(f, server.Options{Store: st, HibernateAfter: 50 * time.Millisecond, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s)
		t.Cleanup(ts.Close)
		return s, "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/durable"
	}
	stop := func(s *server.Server, c *roomClient) {
		_ = c.c.Close()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	// state reads the counter guest's reply: memory counter, global
	// counter, pages, clients, Inits, marker.
	state := func(c *roomClient) [6]uint32 {
		t.Helper()
		p, err := c.read()
		b := p.Data
		if err != nil || len(b) != 24 {
			t.Fatalf("%s: reply %x, %v", c.name, b, err)
		}
		var v [6]uint32
		for i := range v {
			v[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		return v
	}
	say := func(c *roomClient, cmd string) [6]uint32 {
		t.Helper()
		c.send(stateroom.Text(cmd))
		return state(c)
	}

	s1, url := start(counterWAT)
	c := dial(t, url, "first")
	if got := state(c); got != [6]uint32{0, 0, 1, 1, 1, 0} {
		t.Fatalf("after Connect: %v", got)
	}
	say(c, "i")
	say(c, "g")
	if got := say(c, "i"); got != [6]uint32{2, 2, 2, 1, 1, 1001} {
		t.Fatalf("before hibernating: %v", got)
	}
	// Idle past HibernateAfter: the room drops its instance, and the next
	// event wakes it on a new one, restored from raw memory, with the
	// client still there and no second Init.
	for deadline := time.Now().Add(10 * time.Second); closed.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the idle room did not hibernate within 10 s")
		}
	}
	if got := say(c, "i"); got != [6]uint32{3, 3, 2, 1, 1, 1001} {
		t.Fatalf("after waking: %v", got)
	}
	if n := made.Load(); n != 2 {
		t.Fatalf("%d instances made, want 2: the room did not hibernate and wake", n)
	}
	stop(s1, c)

	// A restart onto the same store: the room comes back; the client left
	// at Shutdown (its Disconnect was delivered before the last save) and
	// reconnects.
	s2, url := start(counterWAT)
	c = dial(t, url, "after restart")
	if got := state(c); got != [6]uint32{3, 3, 2, 1, 1, 1001} {
		t.Fatalf("after the restart: %v", got)
	}
	stop(s2, c)

	// A rebuilt module cannot read the old one's memory: the room starts
	// fresh, and the old record is not set aside.
	s3, url := start([]byte(strings.Replace(string(counterWAT), "(i32.const 1000)", "(i32.const 2000)", 1)))
	c = dial(t, url, "after rebuild")
	if got := state(c); got != [6]uint32{0, 0, 1, 1, 1, 0} {
		t.Fatalf("after the rebuild: %v, want a fresh room", got)
	}
	stop(s3, c)
	if aside, err := st.ListSetAside(ctx); err != nil || len(aside) != 0 {
		t.Errorf("set aside: %+v, %v; want nothing", aside, err)
	}
}

// durableService is what a wasmhost service is, as the runtime sees it.
type durableService interface {
	stateroom.Service
	stateroom.Snapshotter
	io.Closer
}

// counted is a wasmhost service that counts its Close.
type counted struct {
	durableService
	closed *atomic.Int32
}

func (c counted) Close() error {
	c.closed.Add(1)
	return c.durableService.Close()
}
