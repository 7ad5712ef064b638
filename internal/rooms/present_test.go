package rooms

import (
	"slices"
	"testing"

	"github.com/stateroom-go/stateroom"
)

// TestPresent: the clients a woken instance's Init names are those it will
// hear of only through a Disconnect: everyone in the table (a client
// leaving, its Disconnect due, included) but the client whose Connect woke
// the room, plus the client whose Disconnect did (already out of the
// table).
func TestPresent(t *testing.T) {
	r := &Room{}
	a, b, c, d := &seat{room: r}, &seat{room: r}, &seat{room: r}, &seat{room: r}
	for _, s := range []*seat{a, b, c, d} {
		r.members.attach(s) // ids 1 to 4
	}
	r.members.detach(c) // kicked: its Disconnect is due
	r.members.detach(d)
	if r.members.nextLeaving() != c { // c's Disconnect is the event
		t.Fatal("the table did not hand out c's Disconnect first")
	}
	joining := &seat{room: r}
	r.members.attach(joining) // id 5

	for _, tc := range []struct {
		name string
		kind eventKind
		s    *seat
		want []stateroom.ClientID
	}{
		{"a client joining", evConnect, joining, []stateroom.ClientID{1, 2, 4}},
		{"a message", evMessage, a, []stateroom.ClientID{1, 2, 4, 5}},
		{"the timer", evTimer, nil, []stateroom.ClientID{1, 2, 4, 5}},
		{"a client leaving", evDisconnect, c, []stateroom.ClientID{1, 2, 3, 4, 5}},
	} {
		if got := r.present(tc.kind, tc.s); !slices.Equal(got, tc.want) {
			t.Errorf("woken by %s: Init names %v, want %v", tc.name, got, tc.want)
		}
	}
}
