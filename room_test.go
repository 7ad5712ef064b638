package stateroom

import (
	"errors"
	"slices"
	"testing"
)

func TestRecipientIncludes(t *testing.T) {
	cases := []struct {
		r    Recipient
		id   ClientID
		want bool
	}{
		{Everyone, 1, true},
		{Recipient{}, 7, true},
		{To(3), 3, true},
		{To(3), 4, false},
		{EveryoneExcept(3), 3, false},
		{EveryoneExcept(3), 4, true},
	}
	for _, c := range cases {
		if got := c.r.Includes(c.id); got != c.want {
			t.Errorf("%v.Includes(%d) = %v, want %v", c.r, c.id, got, c.want)
		}
	}
	if Everyone != (Recipient{}) {
		t.Error("the zero Recipient is not Everyone")
	}
}

func TestRecipientString(t *testing.T) {
	for r, want := range map[Recipient]string{
		Everyone:          "everyone",
		To(5):             "client 5",
		EveryoneExcept(2): "everyone except 2",
	} {
		if got := r.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestPayloadKinds(t *testing.T) {
	if p := Text("hi"); !p.IsText() || p.Binary || p.String() != "hi" {
		t.Errorf("Text(hi) = %+v", p)
	}
	if p := Binary([]byte{1}); p.IsText() || !p.Binary {
		t.Errorf("Binary = %+v", p)
	}
}

func TestFault(t *testing.T) {
	cause := errors.New("trap")
	f := &Fault{Reason: "guest fault", Err: cause}
	if !errors.Is(f, cause) || f.Error() != "guest fault: trap" {
		t.Errorf("Fault = %v", f)
	}
	if (&Fault{Reason: "r"}).Error() != "r" {
		t.Error("Fault without cause")
	}
}

// TestFactoryFunc: the adapter hands each room id to the function and
// returns exactly what it returned, service and error, calling it once per
// room; so a function's error reaches the server as it was made (wrapping
// ErrRoomRefused, say, for a 403) and each room gets the service made for
// it.
func TestFactoryFunc(t *testing.T) {
	var calls []string
	services := map[string]Service{"a": &BaseService{}, "b": &BaseService{}}
	refused := errors.New("no such game")
	f := FactoryFunc(func(id string) (Service, error) {
		calls = append(calls, id)
		if s, ok := services[id]; ok {
			return s, nil
		}
		return nil, refused
	})
	for _, id := range []string{"a", "b", "a"} {
		if s, err := f.NewService(id); s != services[id] || err != nil {
			t.Errorf("NewService(%q) = %p, %v; want %p, nil", id, s, err, services[id])
		}
	}
	if s, err := f.NewService("zzz"); s != nil || err != refused {
		t.Errorf("NewService(zzz) = %v, %v; want nil and the function's own error", s, err)
	}
	if want := []string{"a", "b", "a", "zzz"}; !slices.Equal(calls, want) {
		t.Errorf("the function was called with %q; want %q, once per NewService", calls, want)
	}
}

// counter is a service type with state, to tell instances apart.
type counter struct {
	BaseService
	room string
}

// TestNew: New's factory builds a fresh service per call from the room id,
// never fails, and returns the constructor's value itself (so the server's
// type assertions for io.Closer and MemoryReporter see the concrete type).
func TestNew(t *testing.T) {
	f := New(func(id string) *counter { return &counter{room: id} })
	s1, err1 := f.NewService("room-1")
	s2, err2 := f.NewService("room-1")
	if err1 != nil || err2 != nil {
		t.Fatalf("NewService errors: %v, %v", err1, err2)
	}
	c1, ok := s1.(*counter)
	if !ok || c1.room != "room-1" {
		t.Fatalf("NewService(room-1) = %#v; want the *counter the constructor made for room-1", s1)
	}
	if s1 == s2 {
		t.Error("two calls returned the same service: each room needs its own instance")
	}
}
