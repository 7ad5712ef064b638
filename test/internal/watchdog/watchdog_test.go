package watchdog_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/test/internal/watchdog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo answers every event with a message naming it, and keeps its timer
// set; a message "block"
// blocks until release is closed, and "panic" panics.
type echo struct {
	release chan struct{}
	closed  bool
}

func (e *echo) Init(room stateroom.Room, _ stateroom.InitEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("init"))
	room.SetTimer(time.Second)
}

func (e *echo) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text("connect"))
}

func (e *echo) Disconnect(room stateroom.Room, _ stateroom.DisconnectEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("disconnect"))
}

func (e *echo) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	switch ev.Payload.String() {
	case "block":
		<-e.release
	case "panic":
		panic("echo: asked to")
	}
	room.Send(stateroom.To(ev.Client), ev.Payload)
}

func (e *echo) Timer(room stateroom.Room, _ stateroom.TimerEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("timer"))
	room.SetTimer(time.Second)
}

func (e *echo) Close() error       { e.closed = true; return nil }
func (e *echo) MemoryBytes() int64 { return 1234 }

// overruns collects what the watchdog reports.
type overruns struct {
	mu   sync.Mutex
	errs []error
}

func (o *overruns) add(err error) { o.mu.Lock(); o.errs = append(o.errs, err); o.mu.Unlock() }

func (o *overruns) get() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.errs...)
}

// TestPassesThrough: callbacks that return in time reach the service and
// its sends reach the room as they were; nothing is reported; the
// service's Close and MemoryBytes are the inner one's.
func TestPassesThrough(t *testing.T) {
	inner := &echo{}
	var o overruns
	f := watchdog.Factory(stateroom.New(func(string) *echo { return inner }), watchdog.Options{Limit: time.Second, Overrun: o.add})
	svc, err := f.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	b := room.Connect()
	room.Message(a, stateroom.Text("hi"))
	room.Disconnect(b)
	room.FireTimer()
	var got []string
	for _, s := range room.Sent {
		got = append(got, s.Payload.String())
	}
	if want := "init connect connect hi disconnect timer"; strings.Join(got, " ") != want {
		t.Errorf("the service sent %q; want %q", got, want)
	}
	if !room.TimerSet {
		t.Error("the timer the service set in Timer is not set")
	}
	if err := svc.(interface{ Close() error }).Close(); err != nil || !inner.closed {
		t.Errorf("Close: %v, inner closed %v; want the inner service closed", err, inner.closed)
	}
	if n := svc.(stateroom.MemoryReporter).MemoryBytes(); n != 1234 {
		t.Errorf("MemoryBytes() = %d; want the inner service's 1234", n)
	}
	if errs := o.get(); len(errs) != 0 {
		t.Errorf("overruns reported: %v", errs)
	}
}

// TestOverrunStops: a callback still running at the limit is reported,
// then Stop is called, and the call returning afterwards ends the matter.
func TestOverrunStops(t *testing.T) {
	inner := &echo{release: make(chan struct{})}
	var o overruns
	var stopped sync.Once
	f := watchdog.Factory(stateroom.New(func(string) *echo { return inner }), watchdog.Options{
		Limit:   20 * time.Millisecond,
		Overrun: o.add,
		Stop:    func() { stopped.Do(func() { close(inner.release) }) },
	})
	svc, err := f.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	room.Message(a, stateroom.Text("block")) // returns once Stop released it
	errs := o.get()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `Message event of room "r" is still running after 20ms`) {
		t.Errorf("reported %v; want one overrun of the Message event", errs)
	}
}

// TestStartIsWatched: a factory whose NewService overruns is reported as
// the room's start.
func TestStartIsWatched(t *testing.T) {
	release := make(chan struct{})
	var o overruns
	f := watchdog.Factory(stateroom.FactoryFunc(func(string) (stateroom.Service, error) {
		<-release
		return nil, errors.New("refused")
	}), watchdog.Options{Limit: 20 * time.Millisecond, Overrun: o.add, Stop: func() { close(release) }})
	if _, err := f.NewService("r"); err == nil || err.Error() != "refused" {
		t.Errorf("NewService error %v; want the factory's own", err)
	}
	if errs := o.get(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "start event") {
		t.Errorf("reported %v; want one overrun of the start", errs)
	}
}

// TestPanicPassesThrough: a panicking callback (a faulting guest) panics
// through the watchdog with its own value and is not an overrun.
func TestPanicPassesThrough(t *testing.T) {
	var o overruns
	f := watchdog.Factory(stateroom.New(func(string) *echo { return &echo{} }), watchdog.Options{Limit: 20 * time.Millisecond, Overrun: o.add})
	svc, _ := f.NewService("r")
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	func() {
		defer func() {
			if r := recover(); r != "echo: asked to" {
				t.Errorf("recovered %v; want the service's own panic", r)
			}
		}()
		room.Message(a, stateroom.Text("panic"))
	}()
	time.Sleep(50 * time.Millisecond) // past the limit: the timer must be stopped
	if errs := o.get(); len(errs) != 0 {
		t.Errorf("overruns reported after a panic: %v", errs)
	}
}

// TestPanicsWhenNothingStops runs itself as a child process whose callback
// nothing stops: the watchdog must end the process with its reason, in
// about Limit plus Grace.
func TestPanicsWhenNothingStops(t *testing.T) {
	if os.Getenv("WATCHDOG_CHILD") == "1" {
		f := watchdog.Factory(stateroom.New(func(string) *echo { return &echo{release: make(chan struct{})} }), watchdog.Options{
			Limit: 20 * time.Millisecond, Grace: 20 * time.Millisecond, Overrun: func(error) {},
		})
		svc, _ := f.NewService("stuck")
		room := stateroomtest.NewRoom("stuck", svc)
		room.Message(room.Connect(), stateroom.Text("block")) // never returns
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestPanicsWhenNothingStops$")
	cmd.Env = append(os.Environ(), "WATCHDOG_CHILD=1")
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `the Message event of room "stuck" is still running`) || !strings.Contains(string(out), "nothing stops it") {
		t.Fatalf("child ended with %v after %v; want a panic naming the stuck event; output:\n%s", err, time.Since(began), out)
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("the child took %v to end; the watchdog should end it within about 40ms", d)
	}
}

// TestInChildRunsBody: the body runs in the child only, and the parent
// passes when the child does.
func TestInChildRunsBody(t *testing.T) {
	if os.Getenv("WATCHDOG_MARKER") == "" {
		t.Setenv("WATCHDOG_MARKER", t.TempDir()) // the child inherits it
	}
	marker := os.Getenv("WATCHDOG_MARKER") + "/ran"
	if !watchdog.InChild(t, time.Minute) {
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("the body did not run in the child: %v", err)
		}
		return
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInChildFails runs TestChildThatFails and TestChildThatHangs (each in
// a process of its own, which runs it in a child in turn) and checks that
// each fails as it must, the hanging one in about its deadline.
func TestInChildFails(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ test, says string }{
		{"TestChildThatFails", "failed in its child process"},
		{"TestChildThatHangs", "was still running after 300ms in its child process and was killed"},
	} {
		t.Run(tc.test, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^"+tc.test+"$")
			cmd.Env = append(os.Environ(), "WATCHDOG_TRY=1")
			began := time.Now()
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.says) {
				t.Errorf("ended with %v after %v; want a failure saying %q; output:\n%s", err, time.Since(began), tc.says, out)
			}
			if strings.Contains(tc.test, "Fails") && !strings.Contains(string(out), "deliberate failure") {
				t.Errorf("the child's own output is not in the failure:\n%s", out)
			}
			if d := time.Since(began); d > 30*time.Second {
				t.Errorf("took %v; the deadline is 300ms", d)
			}
		})
	}
}

func TestChildThatFails(t *testing.T) {
	if os.Getenv("WATCHDOG_TRY") == "" {
		t.Skip("run by TestInChildFails")
	}
	if !watchdog.InChild(t, time.Minute) {
		return
	}
	t.Error("deliberate failure")
}

func TestChildThatHangs(t *testing.T) {
	if os.Getenv("WATCHDOG_TRY") == "" {
		t.Skip("run by TestInChildFails")
	}
	if !watchdog.InChild(t, 300*time.Millisecond) {
		return
	}
	time.Sleep(time.Hour)
}

// durable is an echo that is a stateroom.Snapshotter; a Snapshot blocks
// until release is closed, when release is set.
type durable struct {
	echo
	state []byte
}

func (d *durable) Snapshot() ([]byte, error) {
	if d.release != nil {
		<-d.release
	}
	return d.state, nil
}

func (d *durable) Restore(b []byte) error {
	if string(b) == "bad" {
		return errors.New("bad snapshot")
	}
	d.state = b
	return nil
}

// TestSnapshotterForwarded: the wrapper of a Snapshotter is one and
// forwards both calls (their results included); the wrapper of a service
// that is not one is not one either, so the runtime does not try to save
// it.
func TestSnapshotterForwarded(t *testing.T) {
	inner := &durable{}
	var o overruns
	f := watchdog.Factory(stateroom.New(func(string) *durable { return inner }), watchdog.Options{Limit: time.Second, Overrun: o.add})
	svc, err := f.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	sn, ok := svc.(stateroom.Snapshotter)
	if !ok {
		t.Fatal("the wrapper of a Snapshotter is not a stateroom.Snapshotter")
	}
	if err := sn.Restore([]byte("saved")); err != nil || string(inner.state) != "saved" {
		t.Errorf("Restore: %v, inner state %q; want the inner service restored", err, inner.state)
	}
	if err := sn.Restore([]byte("bad")); err == nil || err.Error() != "bad snapshot" {
		t.Errorf("Restore of a bad snapshot: %v; want the inner service's error", err)
	}
	if b, err := sn.Snapshot(); err != nil || string(b) != "saved" {
		t.Errorf("Snapshot() = %q, %v; want the inner service's %q", b, err, "saved")
	}
	// The other capabilities stay.
	if _, ok := svc.(stateroom.MemoryReporter); !ok {
		t.Error("the wrapper of a Snapshotter lost MemoryBytes")
	}
	if errs := o.get(); len(errs) != 0 {
		t.Errorf("overruns reported: %v", errs)
	}

	plain, err := watchdog.Factory(stateroom.New(func(string) *echo { return &echo{} }), watchdog.Options{Limit: time.Second, Overrun: o.add}).NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.(stateroom.Snapshotter); ok {
		t.Error("the wrapper of a service without Snapshot and Restore is a stateroom.Snapshotter")
	}
}

// TestSnapshotIsWatched: a Snapshot still running at the limit is reported
// as the room's Snapshot event.
func TestSnapshotIsWatched(t *testing.T) {
	inner := &durable{echo: echo{release: make(chan struct{})}}
	var o overruns
	var stopped sync.Once
	f := watchdog.Factory(stateroom.New(func(string) *durable { return inner }), watchdog.Options{
		Limit:   20 * time.Millisecond,
		Overrun: o.add,
		Stop:    func() { stopped.Do(func() { close(inner.release) }) },
	})
	svc, err := f.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.(stateroom.Snapshotter).Snapshot(); err != nil {
		t.Fatal(err)
	}
	if errs := o.get(); len(errs) != 1 || !strings.Contains(errs[0].Error(), `Snapshot event of room "r"`) {
		t.Errorf("reported %v; want one overrun of the Snapshot", errs)
	}
}
