package servertest

import (
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shout sends text to everyone, answers binary with its length byte
// prepended, and faults on "bye": enough for every kind of step.
type shout struct{ stateroom.BaseService }

func (shout) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	if ev.Payload.Binary {
		r.Send(stateroom.To(ev.Client), stateroom.Binary(append([]byte{byte(len(ev.Payload.Data))}, ev.Payload.Data...)))
		return
	}
	if string(ev.Payload.Data) == "bye" {
		panic(&stateroom.Fault{Reason: "bye"})
	}
	r.Send(stateroom.Everyone, ev.Payload)
}

func TestRun(t *testing.T) {
	Run(t, stateroom.New(func(string) shout { return shout{} }), server.Options{}, []string{
		"a+",
		"b+",
		"c+ elsewhere",
		"a> hi",
		"a< hi",
		"b< hi",
		"c>> 0aff",
		"c<< 020aff",
		"b-",
		"a> bye",
		"a<close 1011",
		"c> still here",
		"c< still here",
	})
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line, name, op, arg string
	}{
		{
			line: "a+",
			name: "a",
			op:   "+",
		},
		{
			line: "alice+ lobby",
			name: "alice",
			op:   "+",
			arg:  "lobby",
		},
		{
			line: "a> x y",
			name: "a",
			op:   ">",
			arg:  "x y",
		},
		{
			line: "a>> 00",
			name: "a",
			op:   ">>",
			arg:  "00",
		},
		{
			line: "b<< ",
			name: "b",
			op:   "<<",
		},
		{
			line: "b<close 4000",
			name: "b",
			op:   "<close",
			arg:  "4000",
		},
		{
			line: "a-",
			name: "a",
			op:   "-",
		},
	} {
		name, op, arg, err := parse(tc.line)
		if err != nil || name != tc.name || op != tc.op || arg != tc.arg {
			t.Errorf("parse(%q) = %q %q %q %v", tc.line, name, op, arg, err)
		}
	}
	for _, bad := range []string{"", "+", "a", "a? x", " a> x"} {
		if _, _, _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted a bad line", bad)
		}
	}
}
