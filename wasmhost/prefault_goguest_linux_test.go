package wasmhost_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestGoGuestPrefault checks, on the Go counter as `stateroom build`
// writes it, that what the host learns to pre-fault is something (the
// start writes some twenty pages of the image) and only what every start
// writes: a pre-faulted room's image mapping holds exactly the private
// pages of one that was not pre-faulted, so pre-faulting costs a room no
// memory. A room with a far longer id, whose start writes more, still
// starts and runs.
func TestGoGuestPrefault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and pre-initialises the Go counter")
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := gobuildtest.Factory(t, preinitModule(t, gobuildtest.Module(t, "../examples/counter", "")), wasmhost.Options{Logger: discard})
	start := func(id string) stateroom.Service {
		s, err := m.NewService(id)
		if err != nil {
			t.Fatalf("NewService(%q): %v", id, err)
		}
		t.Cleanup(func() { _ = s.(io.Closer).Close() })
		return s
	}
	start("room-0001") // learns, with the probe
	pages := wasmhost.PrefaultPages(m)
	if pages < 1 {
		t.Fatalf("%d pages learnt to pre-fault; want some", pages)
	}
	restore := wasmhost.PrefaultMode(false, false)
	plain := wasmhost.SmapsBytes(t, wasmhost.ImageMappingAddr(start("room-0002")), "Anonymous") >> 10
	restore()
	prefaulted := wasmhost.SmapsBytes(t, wasmhost.ImageMappingAddr(start("room-0003")), "Anonymous") >> 10
	t.Logf("%d pages pre-faulted; private pages in the image mapping: %d KiB pre-faulted, %d KiB not", pages, prefaulted, plain)
	if prefaulted != plain {
		t.Errorf("a pre-faulted room's image mapping holds %d KiB of private pages, one not pre-faulted %d KiB: the learnt set is not what every start writes", prefaulted, plain)
	}
	long := start(strings.Repeat("x", 6000))
	room := stateroomtest.NewRoom("long", stateroom.BaseService{})
	long.Init(room, stateroom.InitEvent{})
	long.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("+")})
}
