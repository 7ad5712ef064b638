//go:build !wasip1

package guest_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// TestMembersGoGuest: a Go guest woken from a snapshot gets, in its
// service's InitEvent.Clients, the clients the host named through the
// SDK's stateroom_member export; a fresh room's Init names none.
func TestMembersGoGuest(t *testing.T) {
	m := loadHost(t, snapperModule(t), nil)
	s := startHost(t, m)
	room := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	s.Init(room, stateroom.InitEvent{})
	if got := ask(room, s, "clients"); !slices.Equal(got, []string{"clients="}) {
		t.Fatalf("a fresh room: %q, want no clients", got)
	}
	ask(room, s, "inc")
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	woken := startHost(t, m)
	if err := woken.Restore(snap); err != nil {
		t.Fatal(err)
	}
	room = stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	woken.Init(room, stateroom.InitEvent{Restored: true, Clients: []stateroom.ClientID{1, 4}})
	if got := ask(room, woken, "clients"); !slices.Equal(got, []string{"clients=1,4"}) {
		t.Fatalf("a woken room: %q, want clients=1,4", got)
	}
	if got := ask(room, woken, "get"); !slices.Equal(got, []string{"n=1 restored=true blob=0"}) {
		t.Fatalf("a woken room's state: %q", got)
	}
}

// BenchmarkWakeMembers is what the members extension adds to a woken Go
// guest's Init: an Init naming 64 clients (64 stateroom_member calls, then
// Init) against one naming none, on one instance through wasmhost. The
// difference over 64 is the cost per kept client, paid once per wake.
//
//	go test -run '^$' -bench BenchmarkWakeMembers -benchtime 3000x ./guest/
func BenchmarkWakeMembers(b *testing.B) {
	s := startHost(b, loadHost(b, snapperModule(b), nil))
	room := stateroomtest.NewRoom("room/7", stateroom.BaseService{})
	clients := make([]stateroom.ClientID, 64)
	for i := range clients {
		clients[i] = stateroom.ClientID(i + 1)
	}
	for _, n := range []int{0, len(clients)} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			ev := stateroom.InitEvent{Restored: true, Clients: clients[:n]}
			for b.Loop() {
				s.Init(room, ev)
			}
		})
	}
}
