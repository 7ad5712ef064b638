package preinit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom/internal/abi"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/preinit"
	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// opts is for start-ups that must succeed: under the race detector, on a
// busy machine, wazero's interpreter runs the probe's start-up a hundred
// times slower than the ~0.1 s it takes otherwise, past DefaultTimeout.
var opts = preinit.Options{Timeout: 15 * time.Minute}

var probeOnce struct {
	sync.Once
	pre []byte
	res preinit.Result
	err error
}

// probe returns the probe service built to a module, and pre-initialised
// (once per test binary).
func probe(t testing.TB) (plain, pre []byte, res preinit.Result) {
	t.Helper()
	plain = gobuildtest.Module(t, "testdata/probe", "")
	probeOnce.Do(func() {
		probeOnce.pre, probeOnce.res, probeOnce.err = preinit.Run(context.Background(), plain, opts)
	})
	if probeOnce.err != nil {
		t.Fatal(probeOnce.err)
	}
	return plain, probeOnce.pre, probeOnce.res
}

// TestRun checks the shape of a pre-initialised module: its memory starts
// at the initialised size, the ABI's globals still point at 1 and 0, and
// there is no start-up left to run (no _initialize, no start function).
func TestRun(t *testing.T) {
	plain, pre, res := probe(t)
	t.Logf("%d -> %d bytes; %+v", len(plain), len(pre), res)
	if res.Reseeded < 2 {
		t.Errorf("%d ranges reseeded, want at least the runtime's global generator and its thread's", res.Reseeded)
	}
	if res.Globals == 0 || res.Segments == 0 || res.MemoryBytes == 0 {
		t.Errorf("result %+v: nothing frozen", res)
	}

	h := newHost(t, pre)
	mems := h.compiled.ExportedMemories()
	if m := mems["memory"]; m == nil || int(m.Min())*wasmpatch.PageSize != res.MemoryBytes {
		t.Errorf("memory minimum is not the initialised size %d", res.MemoryBytes)
	}
	if _, ok := h.compiled.ExportedFunctions()["_initialize"]; ok {
		t.Error("the module still exports _initialize")
	}
	r := h.newRoom(t)
	for name, want := range map[string]uint32{wasmpatch.VersionExport: 1, wasmpatch.ProtocolExport: 0} {
		g := r.mod.ExportedGlobal(name)
		if g == nil {
			t.Fatalf("no global %s", name)
		}
		if v, ok := r.mod.Memory().ReadUint32Le(uint32(g.Get())); !ok || v != want {
			t.Errorf("%s points at %d, want %d", name, v, want)
		}
	}
	// Pre-initialising the output again finds no start function.
	if _, _, err := preinit.Run(context.Background(), pre, opts); !errors.Is(err, wasmpatch.ErrUnsupported) || !strings.Contains(err.Error(), "no start function") {
		t.Errorf("pre-initialising twice: %v, want ErrUnsupported (no start function)", err)
	}
}

// TestRunDeterministic: the same module pre-initialises to the same bytes.
func TestRunDeterministic(t *testing.T) {
	plain, pre, _ := probe(t)
	again, _, err := preinit.Run(context.Background(), plain, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pre, again) {
		t.Error("two pre-initialisations of the same module differ")
	}
}

// TestRandomnessPerRoom: two rooms of a pre-initialised module draw
// different numbers from math/rand/v2, math/rand and select, as two rooms
// of the plain module do.
func TestRandomnessPerRoom(t *testing.T) {
	plain, pre, _ := probe(t)
	for name, module := range map[string][]byte{"plain": plain, "pre-initialised": pre} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t, module)
			a, b := h.newRoom(t).ask("draw"), h.newRoom(t).ask("draw")
			fa, fb := strings.Fields(a), strings.Fields(b)
			if len(fa) != 3 || len(fb) != 3 {
				t.Fatalf("answers %q and %q, want three fields", a, b)
			}
			for i := range fa {
				if fa[i] == fb[i] {
					t.Errorf("two rooms drew the same %s", fa[i])
				}
			}
		})
	}
}

// TestFrozenGeneratorsRepeat shows what the reseed prevents: with the
// guest's reseed table emptied, two rooms of a pre-initialised module draw
// the same math/rand/v2 numbers.
func TestFrozenGeneratorsRepeat(t *testing.T) {
	_, pre, _ := probe(t)
	head := []byte("\xffstateroom-pre\xff\x01")
	at := bytes.Index(pre, head)
	if at < 0 || bytes.Count(pre, head) != 1 {
		t.Fatal("the reseed table is not in the module's data once")
	}
	frozen := bytes.Clone(pre)
	binary.LittleEndian.PutUint32(frozen[at+20:], 0) // count
	h := newHost(t, frozen)
	a, b := h.newRoom(t).ask("draw"), h.newRoom(t).ask("draw")
	if strings.Fields(a)[0] != strings.Fields(b)[0] {
		t.Errorf("without reseeding, rooms drew %q and %q; the test no longer shows what reseeding does", a, b)
	}
}

// TestMapsBuiltInInit: maps filled during start-up keep working (their
// seeds and layouts are frozen, not refilled), and new maps work too.
func TestMapsBuiltInInit(t *testing.T) {
	_, pre, _ := probe(t)
	h := newHost(t, pre)
	for range 2 {
		if got := h.newRoom(t).ask("maps"); got != "maps ok" {
			t.Error(got)
		}
	}
}

// TestClock: a reading and a timer taken during start-up (with the build's
// clock, which starts at zero) behave at run time: time.Since is positive,
// the init timer has fired, sleeps and AfterFunc work, and the wall clock
// is the host's.
func TestClock(t *testing.T) {
	_, pre, _ := probe(t)
	got := newHost(t, pre).newRoom(t).ask("clock")
	if got != "clock ok, init wall clock year 1970" {
		t.Error(got)
	}
}

// TestEnvironmentFrozen documents that the environment is read at
// start-up: a pre-initialised module sees the build's empty environment,
// whatever the host passes.
func TestEnvironmentFrozen(t *testing.T) {
	plain, pre, _ := probe(t)
	if got := newHost(t, plain).newRoom(t).ask("env"); got != `init="runtime" now="runtime"` {
		t.Errorf("plain module: %s", got)
	}
	if got := newHost(t, pre).newRoom(t).ask("env"); got != `init="" now=""` {
		t.Errorf("pre-initialised module: %s", got)
	}
}

// TestStartupPanics: a panic during start-up fails with the panic's
// message.
func TestStartupPanics(t *testing.T) {
	_, _, err := preinit.Run(context.Background(), gobuildtest.Module(t, "testdata/panics", ""), opts)
	if !errors.Is(err, preinit.ErrStartup) {
		t.Fatalf("got %v, want ErrStartup", err)
	}
	for _, want := range []string{"panic: preinit-test: config missing in init", "main.loadConfig"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// TestRegisterInMain: a service registered in main (which a reactor never
// runs) fails with the fix.
func TestRegisterInMain(t *testing.T) {
	_, _, err := preinit.Run(context.Background(), gobuildtest.Module(t, "testdata/mainregister", ""), opts)
	if !errors.Is(err, preinit.ErrNotRegistered) {
		t.Fatalf("got %v, want ErrNotRegistered", err)
	}
	if !strings.Contains(err.Error(), "from an init function of package main, not from main") {
		t.Errorf("error gives no fix: %v", err)
	}
}

// TestStartupNeverEnds: an init function that never returns fails at the
// timeout.
func TestStartupNeverEnds(t *testing.T) {
	_, _, err := preinit.Run(context.Background(), gobuildtest.Module(t, "testdata/loops", ""), preinit.Options{Timeout: time.Second})
	if !errors.Is(err, preinit.ErrStartup) || !strings.Contains(err.Error(), "did not finish within 1s") {
		t.Fatalf("got %v, want ErrStartup after 1s", err)
	}
}

// TestClockExample runs examples/clock pre-initialised: Init sets the
// room's timer to the period set at build time, and each Timer event
// broadcasts the next tick and sets the timer again.
func TestClockExample(t *testing.T) {
	pre, _, err := preinit.Run(context.Background(), gobuildtest.Module(t, "../../examples/clock", "-X main.period=200ms"), opts)
	if err != nil {
		t.Fatal(err)
	}
	r := newHost(t, pre).newRoom(t)
	setTimer := abi.Command{Kind: abi.CommandSetTimer, DelayMS: 200}
	if len(r.sent) != 1 || r.sent[0].Kind != setTimer.Kind || r.sent[0].DelayMS != setTimer.DelayMS {
		t.Fatalf("Init sent %v, want SetTimer(200 ms)", r.sent)
	}
	for i := range 2 {
		sent := r.deliver(abi.Event{Kind: abi.EventTimer})
		want := "Timer @ " + strconv.Itoa(i)
		if len(sent) != 2 || sent[0].Payload.String() != want || sent[1].Kind != setTimer.Kind || sent[1].DelayMS != 200 {
			t.Fatalf("Timer %d sent %v, want %q and SetTimer(200 ms)", i, sent, want)
		}
	}
}
