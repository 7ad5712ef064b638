package stateroom

import (
	"errors"
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

func TestFactoryFunc(t *testing.T) {
	refuse := FactoryFunc(func(id string) (Service, error) {
		return nil, errors.Join(ErrRoomRefused, errors.New("no game "+id))
	})
	if _, err := refuse.NewService("x"); !errors.Is(err, ErrRoomRefused) {
		t.Errorf("err = %v", err)
	}
	var got string
	f := New(func(id string) *BaseService { got = id; return &BaseService{} })
	if s, err := f.NewService("room-1"); err != nil || s == nil || got != "room-1" {
		t.Errorf("New: %v %v %q", s, err, got)
	}
}
