//go:build !wasip1

package guest_test

import (
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

func ptr[T any](v T) *T { return &v }

// TestModuleABIValues checks what a host reads at room start: the two
// globals point at 1 and 0, the fallback functions return 1 and 0, and the
// module needs no _initialize call (it is gone; the start function ran).
func TestModuleABIValues(t *testing.T) {
	inst := newInstance(t, nil)
	for name, want := range map[string]uint32{"STATEROOM_API_VERSION": abi.Version, "STATEROOM_API_PROTOCOL": abi.Protocol} {
		g := inst.mod.ExportedGlobal(name)
		if g == nil {
			t.Fatalf("no exported global %s", name)
		}
		got, ok := inst.mod.Memory().ReadUint32Le(uint32(g.Get()))
		if !ok || got != want {
			t.Errorf("%s points at %#x holding %d (in bounds: %v), want %d", name, g.Get(), got, ok, want)
		}
	}
	for name, want := range map[string]uint64{"stateroom_api_version": abi.Version, "stateroom_api_protocol": abi.Protocol} {
		if got := inst.call(inst.mod.ExportedFunction(name)); got[0] != want {
			t.Errorf("%s() = %d, want %d", name, got[0], want)
		}
	}
	if inst.mod.ExportedFunction("_initialize") != nil {
		t.Error("the patched module still exports _initialize; a host would initialize the runtime twice")
	}
}

// TestModuleEvents drives every event kind and recipient kind through the
// module, and checks text stays text and bytes stay bytes, and that
// Room.Close leaves the module as the ABI's Close extension (or not at all,
// for a code a service may not use).
func TestModuleEvents(t *testing.T) {
	inst := newInstance(t, ptr("room/1"))
	type step struct {
		ev   abi.Event
		want []abi.Command
	}
	msg := func(to stateroom.Recipient, p stateroom.Payload) abi.Command {
		return abi.Command{Kind: abi.CommandMessage, To: to, Payload: p}
	}
	text := func(client stateroom.ClientID, s string) abi.Event {
		return abi.Event{Kind: abi.EventMessage, Client: client, Payload: stateroom.Text(s)}
	}
	for i, s := range []step{
		{abi.Event{Kind: abi.EventInit}, nil},
		{abi.Event{Kind: abi.EventConnect, Client: 1}, []abi.Command{msg(stateroom.To(1), stateroom.Text("room:room/1:room/1"))}},
		{text(1, "echo é"), []abi.Command{msg(stateroom.To(1), stateroom.Text("echo é"))}},
		{abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Binary([]byte{1, 2, 3, 4, 5})}, []abi.Command{msg(stateroom.To(1), stateroom.Binary([]byte{1, 2, 3, 4}))}},
		{text(1, "all hi"), []abi.Command{msg(stateroom.Everyone, stateroom.Text("hi"))}},
		{text(2, "others yo"), []abi.Command{msg(stateroom.EveryoneExcept(2), stateroom.Text("yo"))}},
		{text(2, "timer 1500"), []abi.Command{{Kind: abi.CommandSetTimer, DelayMS: 1500}}},
		{abi.Event{Kind: abi.EventTimer}, []abi.Command{msg(stateroom.Everyone, stateroom.Text("timer"))}},
		{abi.Event{Kind: abi.EventDisconnect, Client: 2}, []abi.Command{msg(stateroom.Everyone, stateroom.Text("left 2"))}},
		{text(1, "close 3 4321 see you"), []abi.Command{{Kind: abi.CommandClose, Client: 3, Code: 4321, Reason: "see you"}}},
		{text(1, "close 3 1000 "), []abi.Command{{Kind: abi.CommandClose, Client: 3, Code: stateroom.CloseNormal}}},
		{text(1, "close 3 4000 mine"), []abi.Command{msg(stateroom.To(1), stateroom.Text("close refused: "+stateroom.CheckServiceClose(4000).Error()))}},
	} {
		got := inst.deliver(s.ev)
		if len(got) != len(s.want) {
			t.Fatalf("step %d (%v): got %d commands %+v, want %+v", i, s.ev.Kind, len(got), got, s.want)
		}
		for j := range got {
			g, w := got[j], s.want[j]
			if g.Kind != w.Kind || g.To != w.To || g.DelayMS != w.DelayMS || g.Payload.Binary != w.Payload.Binary || string(g.Payload.Data) != string(w.Payload.Data) ||
				g.Client != w.Client || g.Code != w.Code || g.Reason != w.Reason {
				t.Errorf("step %d (%v) command %d: got %+v, want %+v", i, s.ev.Kind, j, g, w)
			}
		}
	}
}

// TestModuleRoomIDUnknown checks a host that never writes the room id gets
// a service built for the empty id.
func TestModuleRoomIDUnknown(t *testing.T) {
	inst := newInstance(t, nil)
	inst.deliver(abi.Event{Kind: abi.EventInit})
	got := inst.deliver(abi.Event{Kind: abi.EventConnect, Client: 1})
	if len(got) != 1 || got[0].Payload.String() != "room::" {
		t.Errorf("got %+v, want one message %q", got, "room::")
	}
}

// TestModuleClockAndRandom checks time.Now and crypto/rand in a service
// reach the host's WASI clock and random source.
func TestModuleClockAndRandom(t *testing.T) {
	inst := newInstance(t, ptr("r"))
	inst.deliver(abi.Event{Kind: abi.EventInit})
	send := func(s string) string {
		got := inst.deliver(abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text(s)})
		if len(got) != 1 {
			t.Fatalf("%q: got %d commands", s, len(got))
		}
		return got[0].Payload.String()
	}
	ns, err := strconv.ParseInt(send("time"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(time.Unix(0, ns)); d < -time.Minute || d > time.Minute {
		t.Errorf("guest clock is %v off the host's", d)
	}
	a, b := send("rand"), send("rand")
	if len(a) != 32 || a == b || a == strings.Repeat("0", 32) {
		t.Errorf("random values %q and %q: want two different 16-byte values", a, b)
	}
}

// TestModulePanicEndsInstance checks a panicking service makes the call fail
// (the Go runtime prints the panic and aborts with a trap), which a host
// turns into a fault of that room, and that the panic value reaches stderr.
func TestModulePanicEndsInstance(t *testing.T) {
	inst := newInstance(t, ptr("r"))
	var stderr strings.Builder
	inst.stderr = &stderr
	inst.deliver(abi.Event{Kind: abi.EventInit})
	b := abi.AppendEvent(nil, abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text("panic")})
	p := inst.put(b)
	_, err := inst.recv.Call(inst.ctx, p, uint64(len(b)))
	if err == nil {
		t.Fatal("recv of a panicking event returned no error")
	}
	if !strings.Contains(stderr.String(), "probe: asked to panic") {
		t.Errorf("stderr %q does not carry the panic value", stderr.String())
	}
}

// TestModuleNoLeak delivers a million events and checks the instance's
// memory stays flat after warm-up: buffers from malloc are released by free
// and nothing else accumulates per event.
func TestModuleNoLeak(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	inst := newInstance(t, ptr("r"))
	inst.deliver(abi.Event{Kind: abi.EventInit})
	ev := abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text("echo hello, this is a small message")}
	// The Go heap settles at about 7.5 MiB within 200,000 such events
	// (its collector paces itself from the 4 MiB minimum heap); growth
	// after that would be a leak.
	warmUp := n * 3 / 10
	var warm uint32
	for i := range n {
		if i == warmUp {
			warm = inst.mod.Memory().Size()
		}
		inst.deliver(ev)
	}
	// The collector's pacing may still take a page or two; a leak of even
	// one byte per event would take more than leakSlack over the last
	// 70% of a million events.
	const leakSlack = 4 * 64 << 10
	if after := inst.mod.Memory().Size(); after > warm+leakSlack {
		t.Errorf("memory grew from %d to %d bytes over the last %d of %d events (slack %d)", warm, after, n-warmUp, n, leakSlack)
	}
}

// memoryBound is the most an instance's linear memory may reach while it
// handles 10,000 messages of 64 KiB that the service copies: the Go
// runtime's baseline (about 4 MiB) plus a few heap generations. Without the
// yield at the end of each event the memory grows to hundreds of MiB.
const memoryBound = 32 << 20

// TestModuleMemoryBounded sends 10,000 binary messages of 64 KiB.
func TestModuleMemoryBounded(t *testing.T) {
	inst := newInstance(t, ptr("r"))
	inst.deliver(abi.Event{Kind: abi.EventInit})
	payload := make([]byte, 64<<10)
	for i := range 10_000 {
		binary.LittleEndian.PutUint32(payload, uint32(i))
		got := inst.deliver(abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Binary(payload)})
		if len(got) != 1 || binary.LittleEndian.Uint32(got[0].Payload.Data) != uint32(i) {
			t.Fatalf("message %d: got %+v", i, got)
		}
	}
	size := inst.mod.Memory().Size()
	t.Logf("memory after 10,000 messages of 64 KiB: %.1f MiB", float64(size)/(1<<20))
	if size > memoryBound {
		t.Errorf("memory reached %d bytes, bound is %d", size, memoryBound)
	}
}

func BenchmarkModuleInstantiate(b *testing.B) {
	probeModule(b)
	b.ResetTimer()
	for range b.N {
		inst := instantiate(b, ptr("r"))
		inst.mod.Close(context.Background())
	}
}

func BenchmarkModuleEvent(b *testing.B) {
	inst := newInstance(b, ptr("r"))
	inst.deliver(abi.Event{Kind: abi.EventInit})
	ev := abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text("echo hello")}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if len(inst.deliver(ev)) != 1 {
			b.Fatal("no reply")
		}
	}
}

var (
	abiInit = abi.Event{Kind: abi.EventInit}
	abiEcho = abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text("echo hello")}
)
