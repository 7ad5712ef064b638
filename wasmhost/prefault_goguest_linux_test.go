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
// writes: a pre-faulted room's image mapping holds the private pages of
// one that was not pre-faulted, and at most the one page of the room id's
// allocation size more when its id is of another length than the first
// room's. A room with a far longer id, whose start writes more, still
// starts and counts.
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
	// A room with an id as long as the learner's holds as many private
	// pages pre-faulted as not; one whose id's allocation is of another
	// size (a UUID's 36 bytes, 200 bytes) at most one page more: the page
	// of the learner's allocation size, which its start does not write
	// (a known cost, docs/PERFORMANCE.md, "Pre-faulting").
	for _, id := range []string{"room-0002", "0f8fad5b-d9cb-469f-a165-70867728950e", strings.Repeat("r", 200)} {
		restore := wasmhost.PrefaultMode(false, false)
		plain := wasmhost.SmapsBytes(t, wasmhost.ImageMappingAddr(start(id)), "Anonymous") >> 10
		restore()
		prefaulted := wasmhost.SmapsBytes(t, wasmhost.ImageMappingAddr(start(id)), "Anonymous") >> 10
		t.Logf("%d pages pre-faulted; id of %d bytes: private pages in the image mapping: %d KiB pre-faulted, %d KiB not", pages, len(id), prefaulted, plain)
		extra := int64(0)
		if len(id) != len("room-0001") {
			extra = 4
		}
		if prefaulted < plain || prefaulted > plain+extra {
			t.Errorf("id of %d bytes: a pre-faulted room's image mapping holds %d KiB of private pages, one not pre-faulted %d KiB; want at most %d KiB more: the learnt set is not what every start writes", len(id), prefaulted, plain, extra)
		}
	}
	long := start(strings.Repeat("x", 6000))
	room := stateroomtest.NewRoom("long", stateroom.BaseService{})
	long.Init(room, stateroom.InitEvent{})
	long.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text("increment")})
	if got := room.Sent; len(got) == 0 || string(got[len(got)-1].Payload.Data) != "new value: 1" {
		t.Errorf("a room with a 6,000-byte id sent %v; want its count, new value: 1, last", got)
	}
}
