package guest

import (
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// initClients records the Clients of each Init.
type initClients struct {
	stateroom.BaseService
	got [][]stateroom.ClientID
}

func (s *initClients) Init(_ stateroom.Room, ev stateroom.InitEvent) {
	s.got = append(s.got, ev.Clients)
}

// TestMembers: the clients the host names through stateroom_member reach
// the next Init's Clients, in the order named, and that Init only.
func TestMembers(t *testing.T) {
	svc := &initClients{}
	g := &guest{buffers: map[uintptr][]byte{}, send: func([]byte) {}}
	g.register(stateroom.FactoryFunc(func(string) (stateroom.Service, error) { return svc, nil }))
	g.member(3)
	g.member(7)
	deliver(g, abi.Event{Kind: abi.EventInit})
	deliver(g, abi.Event{Kind: abi.EventInit})
	if len(svc.got) != 2 || !slices.Equal(svc.got[0], []stateroom.ClientID{3, 7}) || len(svc.got[1]) != 0 {
		t.Fatalf("the Inits got clients %v, want [[3 7] []]", svc.got)
	}
}
