//go:build !wasip1

package guest_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

var (
	snapperOnce  sync.Once
	snapperBytes []byte
	snapperErr   error
)

// snapperModule builds guest/testdata/snapper once per test binary.
func snapperModule(t testing.TB) []byte {
	t.Helper()
	snapperOnce.Do(func() {
		out := filepath.Join(tmpDir, "snapper.wasm")
		if snapperErr = gobuild.Build(context.Background(), gobuild.Options{Dir: "testdata/snapper", Output: out}); snapperErr != nil {
			return
		}
		snapperBytes, snapperErr = os.ReadFile(out)
	})
	if snapperErr != nil {
		t.Fatalf("building the snapper module: %v", snapperErr)
	}
	return snapperBytes
}

// loadHost compiles wasm with wasmhost, with the compilation cache on (a
// second Module of the same bytes, as after a restart, then loads in
// milliseconds), and closes it when the test ends.
func loadHost(t testing.TB, wasm []byte, logger *slog.Logger) *wasmhost.Module {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := wasmhost.Compile(context.Background(), wasm, wasmhost.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// snapshotter is what every wasmhost service is.
type snapshotter interface {
	stateroom.Service
	stateroom.Snapshotter
	Close() error
}

// startHost starts a room's instance of m.
func startHost(t testing.TB, m *wasmhost.Module) snapshotter {
	t.Helper()
	svc, err := m.NewService("room/7")
	if err != nil {
		t.Fatal(err)
	}
	s := svc.(snapshotter)
	t.Cleanup(func() { s.Close() })
	return s
}

// restoredRoom restores snap into a fresh instance of m and starts its
// room the way the runtime does: Restore, then Init with Restored.
func restoredRoom(t testing.TB, m *wasmhost.Module, snap []byte) (*stateroomtest.Room, snapshotter) {
	t.Helper()
	s := startHost(t, m)
	if err := s.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	room := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	s.Init(room, stateroom.InitEvent{Restored: true})
	return room, s
}

// ask sends text from client 1 and returns the replies.
func ask(room *stateroomtest.Room, s stateroom.Service, text string) []string {
	room.TakeSent()
	s.Message(room, stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(text)})
	var out []string
	for _, m := range room.TakeSent() {
		out = append(out, m.Payload.String())
	}
	return out
}

// TestSnapshotGoGuest: a Go service that is a stateroom.Snapshotter
// snapshots through the SDK's exports, and its state survives a new
// Module (as after a restart) and a new instance; Init then says Restored.
func TestSnapshotGoGuest(t *testing.T) {
	wasm := snapperModule(t)
	m := loadHost(t, wasm, nil)
	s := startHost(t, m)
	room := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	s.Init(room, stateroom.InitEvent{})
	for range 3 {
		ask(room, s, "inc")
	}
	ask(room, s, "blob 1000")
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The host's header, then the service's own bytes.
	if !strings.Contains(string(snap), "guest") || !strings.Contains(string(snap), "v1:3:") {
		t.Fatalf("snapshot %q is not the service's bytes under the host's guest header", snap[:min(len(snap), 40)])
	}

	room2, s2 := restoredRoom(t, loadHost(t, wasm, nil), snap)
	if got := ask(room2, s2, "get"); len(got) != 1 || got[0] != "n=3 restored=true blob=1000" {
		t.Fatalf("after the restore: %q", got)
	}
	if got := ask(room2, s2, "inc"); len(got) != 1 || got[0] != "4" {
		t.Errorf("inc after the restore: %q, want 4", got)
	}
	// A fresh room is not restored.
	fresh := startHost(t, m)
	room3 := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	fresh.Init(room3, stateroom.InitEvent{})
	if got := ask(room3, fresh, "get"); len(got) != 1 || got[0] != "n=0 restored=false blob=0" {
		t.Errorf("a fresh room: %q", got)
	}
}

// TestSnapshotGoGuestFailures: the Go service's Snapshot error, Restore
// error, incompatible snapshot and panic come out of the host as they
// would natively: a skipped save, a refusal (set aside), an
// ErrIncompatibleSnapshot (start fresh), a refusal.
func TestSnapshotGoGuestFailures(t *testing.T) {
	m := loadHost(t, snapperModule(t), nil)
	snapshotAfter := func(cmds ...string) ([]byte, error) {
		s := startHost(t, m)
		room := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
		s.Init(room, stateroom.InitEvent{})
		for _, c := range cmds {
			ask(room, s, c)
		}
		return s.Snapshot()
	}
	_, err := snapshotAfter("fail")
	if !errors.Is(err, wasmhost.ErrSnapshot) || !strings.Contains(err.Error(), "snapper: asked to fail") {
		t.Errorf("a failing Snapshot: %v, want ErrSnapshot with the service's error", err)
	}
	for _, c := range []struct {
		emit         string
		incompatible bool
		says         string
	}{
		{"v0:1", true, "a v0 snapshot"},
		{"garbage", false, "not a snapper snapshot"},
		{"panic", false, "asked to panic in Restore"},
	} {
		snap, err := snapshotAfter("emit " + c.emit)
		if err != nil {
			t.Fatal(err)
		}
		err = startHost(t, m).Restore(snap)
		if !errors.Is(err, wasmhost.ErrRestore) || errors.Is(err, stateroom.ErrIncompatibleSnapshot) != c.incompatible || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Restore of %q: %v; want ErrRestore, incompatible %v, saying %q", c.emit, err, c.incompatible, c.says)
		}
	}
}

// TestSnapshotGoGuestRaw: a Go service that is not a Snapshotter (the
// probe) makes the SDK's stateroom_snapshot answer "none", and the host
// snapshots the instance's raw memory instead: the Go runtime and the
// service's state come back in a new instance of the same module, which
// gets no second Init. The snapshot is from this process, as when a
// hibernated room wakes, so the clients the service knew of are still
// there (wasmhost's tests cover one from another process).
func TestSnapshotGoGuestRaw(t *testing.T) {
	probeModule(t)
	m := loadHost(t, probeBytes, nil)
	s := startHost(t, m)
	room := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	s.Init(room, stateroom.InitEvent{})
	a, b := room.Connect(), room.Connect()
	s.Connect(room, stateroom.ConnectEvent{Client: a})
	s.Connect(room, stateroom.ConnectEvent{Client: b})
	ask(room, s, "keep 300000")
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(snap[:12]), "guest") {
		t.Fatal("a service that is not a Snapshotter gave a guest snapshot")
	}
	t.Logf("raw snapshot of a Go guest holding 300 KB: %d bytes", len(snap))

	room2, s2 := restoredRoom(t, loadHost(t, probeBytes, nil), snap)
	if len(room2.Sent) != 0 {
		t.Errorf("Init after the raw restore sent %v, want nothing", room2.Sent)
	}
	room2.Connect() // client 1 again, for the replies to reach
	room2.Connect()
	s2.Disconnect(room2, stateroom.DisconnectEvent{Client: b})
	if got := room2.TakeSent(); len(got) != 1 || got[0].Payload.String() != "left 2" {
		t.Errorf("Disconnect of a client from before the snapshot: %v", got)
	}
	if got := ask(room2, s2, "kept"); len(got) != 1 || got[0] != "300000" {
		t.Errorf("kept after the raw restore: %q, want 300000", got)
	}
	if got := ask(room2, s2, "keep 1000"); len(got) != 0 {
		t.Errorf("keep: %q", got)
	}
	if got := ask(room2, s2, "kept"); len(got) != 1 || got[0] != "301000" {
		t.Errorf("kept after more: %q, want 301000", got)
	}
	if got := ask(room2, s2, "sleep 10"); len(got) != 1 || got[0] != "slept" {
		t.Errorf("a sleep in the restored Go runtime: %q", got)
	}
	// The room id came back with the memory.
	c := room2.Connect()
	room2.TakeSent()
	s2.Connect(room2, stateroom.ConnectEvent{Client: c})
	if got := room2.Sent; len(got) != 1 || got[0].Payload.String() != "room:room/7:room/7" {
		t.Errorf("Connect after the raw restore: %v", got)
	}
}
