package wasmhost

import (
	"context"
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// withMember returns testdata/counter.wat with body as its
// stateroom_member(client i32).
func withMember(t *testing.T, body string) []byte {
	t.Helper()
	return variant(t, "counter", "(func $command (param $c i32)",
		"(func (export \"stateroom_member\") (param $client i32) "+body+")\n  (func $command (param $c i32)")
}

// compileSource compiles src with testOptions and closes it when the test
// ends.
func compileSource(t *testing.T, src []byte) *Module {
	t.Helper()
	m, err := Compile(context.Background(), src, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// countMember counts a client as the counter guest's Connect does.
const countMember = "(i32.store (i32.const 260) (i32.add (i32.load (i32.const 260)) (i32.const 1)))"

// TestMembers: a guest that exports stateroom_member is told, before its
// Init, of each client InitEvent.Clients names (the counter guest counts
// them as it counts Connects, and reports with Init), and the host counts
// them among the clients the guest knows of, which a raw snapshot carries.
// A guest without the export gets Init alone, as upstream's host gives it.
func TestMembers(t *testing.T) {
	clients := []stateroom.ClientID{2, 5, 9}
	s := newService(t, compileSource(t, withMember(t, countMember)))
	room := newRoom()
	s.Init(room, stateroom.InitEvent{Restored: true, Clients: clients})
	if got := lastCounter(t, room); got.Clients != 3 || got.Inits != 1 {
		t.Fatalf("after Init with clients %v the guest knows %d clients and had %d Inits, want 3 and 1", clients, got.Clients, got.Inits)
	}
	s.Disconnect(room, stateroom.DisconnectEvent{Client: 5})
	if got := lastCounter(t, room); got.Clients != 2 {
		t.Fatalf("after one of them left the guest knows %d clients, want 2", got.Clients)
	}
	if got := s.clientList(); !slices.Equal(got, []stateroom.ClientID{2, 9}) {
		t.Errorf("the host counts %v as the clients the guest knows of, want [2 9]", got)
	}

	plain := newService(t, loadGuest(t, "counter", testOptions()))
	room = newRoom()
	plain.Init(room, stateroom.InitEvent{Restored: true, Clients: clients})
	if got := lastCounter(t, room); got.Clients != 0 || got.Inits != 1 {
		t.Fatalf("a guest without stateroom_member knows %d clients and had %d Inits, want 0 and 1", got.Clients, got.Inits)
	}

	// No clients, no calls: a new room's Init is upstream's.
	fresh := newService(t, compileSource(t, withMember(t, "unreachable")))
	room = newRoom()
	fresh.Init(room, stateroom.InitEvent{})
	if got := lastCounter(t, room); got.Inits != 1 {
		t.Fatalf("a new room's guest had %d Inits, want 1", got.Inits)
	}
}

// TestMemberFaults: a stateroom_member that traps, or sends (there is no
// event to answer), faults the room as an event would, naming the export.
func TestMemberFaults(t *testing.T) {
	ev := stateroom.InitEvent{Restored: true, Clients: []stateroom.ClientID{1}}
	trap := newService(t, compileSource(t, withMember(t, "unreachable")))
	f := mustFault(t, "wasm trap", ErrTrap, func() { trap.Init(newRoom(), ev) })
	wantInMessage(t, f.Err.Error(), "stateroom_member")

	send := newService(t, compileSource(t, withMember(t, "(call $send (i32.const 512) (i32.const 4))")))
	f = mustFault(t, "wasm malformed send", ErrSend, func() { send.Init(newRoom(), ev) })
	wantInMessage(t, f.Err.Error(), "outside an event", "stateroom_member")
}

// TestMemberExportChecked: a stateroom_member of the wrong type is refused
// at load, not at the first wake, with the signature wanted and where the
// extension is described.
func TestMemberExportChecked(t *testing.T) {
	src := variant(t, "counter", "(func $command (param $c i32)",
		"(func (export \"stateroom_member\") (param i64))\n  (func $command (param $c i32)")
	msg := loadError(t, src, testOptions(), ErrExport)
	wantInMessage(t, msg, "stateroom_member(i64)", "want stateroom_member(i32)", "Extension: members")
}
