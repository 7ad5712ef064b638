package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
	"github.com/stateroom-go/stateroom/test/internal/watchdog"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// relayWasm is wasmhost's relay test guest (wasmhost/testdata/relay.wat),
// copied here: it relays every event and faults on command.
//
//go:embed testdata/relay.wasm
var relayWasm []byte

// config is the soak run's settings; main fills it from flags.
type config struct {
	Duration           time.Duration
	Report             time.Duration
	Interval           time.Duration
	Rooms              int
	Clients            int
	FaultyWorkers      int
	MaxRSSGrowthMiB    int64
	MaxGoroutineGrowth int
}

func (c config) validate() error {
	switch {
	case c.Duration <= 0 || c.Report <= 0 || c.Interval <= 0:
		return errors.New("-duration, -report and -interval must be positive durations")
	case c.Rooms < 1 || c.Clients < 2:
		return errors.New("-rooms must be at least 1 and -clients at least 2")
	case c.FaultyWorkers < 0 || c.MaxRSSGrowthMiB < 0 || c.MaxGoroutineGrowth < 0:
		return errors.New("-faulty, -max-rss-growth and -max-goroutine-growth cannot be negative")
	}
	return nil
}

// Server settings of the run: defaults, except a smaller message size
// limit so oversize messages stay cheap, and a short handshake timeout.
const (
	maxMessage   = 64 << 10
	floodPayload = 32 << 10
)

// tally counts the outcomes of one kind of fault.
type tally struct {
	ok, unexpected atomic.Int64
	mu             sync.Mutex
	lastErr        error
}

func (t *tally) record(err error) {
	if err == nil {
		t.ok.Add(1)
		return
	}
	t.mu.Lock()
	t.lastErr = err
	t.mu.Unlock()
	t.unexpected.Add(1)
}

// last returns the last unexpected outcome. record may run on another
// goroutine meanwhile (the watchdog's timer), hence the lock.
func (t *tally) last() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// soak is one run: the server, the healthy groups and the fault tallies.
type soak struct {
	cfg     config
	srv     *server.Server
	base    string // ws://host:port/ws/
	metrics prometheus.Gatherer
	groups  []*wsclient.Group
	kinds   []string
	tallies map[string]*tally
	// overruns counts guest calls the watchdog caught running past
	// guestLimit; any is a failure.
	overruns *tally
}

// guestBudget is the event budget of the wasm rooms, the healthy one's
// included. A healthy event of the relay guest takes microseconds, so a
// budget this wide holds on a loaded machine too, and only the deliberate
// infinite loop runs past it.
const guestBudget = time.Second

// guestLimit is how long any call into a guest may run before the soak
// stops trusting the budget: about ten budgets (see package watchdog).
const guestLimit = 10 * guestBudget

// run runs the soak for cfg.Duration, writes progress and a summary to
// out, and returns an error describing every failed check.
func run(ctx context.Context, cfg config, out io.Writer) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mod, err := wasmhost.Compile(ctx, relayWasm, wasmhost.Options{
		EventBudget: guestBudget, MemoryLimit: 1 << 20, DisableCache: true, Logger: quiet,
	})
	if err != nil {
		return err
	}
	defer mod.Close(context.Background())
	// A guest the budget failed to stop would spin on and hang the soak at
	// its next runtime.ReadMemStats; the watchdog fails it instead.
	overruns := &tally{}
	guarded := watchdog.Factory(mod, watchdog.Options{
		Limit:   guestLimit,
		Overrun: overruns.record,
		Stop:    func() { mod.Close(context.Background()) },
	})
	native := relay.Factory()
	factory := stateroom.FactoryFunc(func(id string) (stateroom.Service, error) {
		if strings.HasPrefix(id, "wasm-") {
			return guarded.NewService(id)
		}
		return native.NewService(id)
	})
	metrics := prometheus.NewRegistry()
	// CloseClient, not the default Throttle: the "message flood" fault
	// checks that a flooder is closed with 1008 and gets its close frame.
	srv, err := server.New(factory, server.Options{MaxMessageSize: maxMessage, HandshakeTimeout: 2 * time.Second, Logger: quiet, Metrics: metrics,
		MessageRateAction: server.CloseClient})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 2 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	s := &soak{cfg: cfg, srv: srv, metrics: metrics, base: "ws://" + ln.Addr().String() + "/ws/", tallies: map[string]*tally{}, overruns: overruns}
	runErr := s.run(ctx, out)

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(runErr, srv.Shutdown(sctx), hs.Shutdown(sctx))
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

func (s *soak) run(ctx context.Context, out io.Writer) error {
	for _, k := range faultKinds {
		s.kinds = append(s.kinds, k.name)
		s.tallies[k.name] = &tally{}
	}
	for _, k := range []string{"stalled reader", "guest fault"} {
		s.kinds = append(s.kinds, k)
		s.tallies[k] = &tally{}
	}

	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for r := range s.cfg.Rooms {
		g, err := wsclient.JoinGroup(jctx, s.base+"healthy-"+strconv.Itoa(r), s.cfg.Clients, wsclient.GroupOptions{Pad: 64})
		if err != nil {
			return err
		}
		s.groups = append(s.groups, g)
	}
	g, err := wsclient.JoinGroup(jctx, s.base+"wasm-healthy", s.cfg.Clients, wsclient.GroupOptions{Unwrap: wsclient.RelayGuestText, Pad: 64})
	if err != nil {
		return err
	}
	s.groups = append(s.groups, g)
	defer func() {
		for _, g := range s.groups {
			g.Close()
		}
	}()

	mix, stopMix := context.WithTimeout(ctx, s.cfg.Duration)
	defer stopMix()
	var actors sync.WaitGroup
	for i, g := range s.groups {
		every := s.cfg.Interval
		if i%2 == 1 {
			every = max(every, quietTalkerInterval)
		}
		actors.Go(func() { s.healthy(mix, g, every) })
	}
	for w := range s.cfg.FaultyWorkers {
		actors.Go(func() { s.faulty(mix, w) })
	}
	actors.Go(func() { s.stalled(mix) })
	actors.Go(func() { s.guests(mix) })

	began := time.Now()
	fmt.Fprintf(out, "soak: %v on %s, %d healthy rooms of %d clients + 1 wasm room, %d faulty workers\n",
		s.cfg.Duration, strings.TrimSuffix(s.base, "/ws/"), s.cfg.Rooms, s.cfg.Clients, s.cfg.FaultyWorkers)
	const row = "%8v %12v %10v %9v %10v %12v %5v %10v %7v %8v %6v\n"
	fmt.Fprintf(out, row, "elapsed", "healthy sent", "delivered", "faulty ok", "unexpected", "guest faults", "rooms", "goroutines", "RSS MiB", "heap MiB", "parked")
	maxParked := 0.0
	var warm sample
	warmAt := min(s.cfg.Report, s.cfg.Duration/4)
	tick := time.NewTicker(s.cfg.Report)
	warmTimer := time.NewTimer(warmAt)
	defer tick.Stop()
	defer warmTimer.Stop()
	report := func() sample {
		sm := takeSample()
		sent, delivered := s.healthyCounts()
		ok, bad := s.faultCounts()
		parked := s.gauge("stateroom_connections_parked")
		maxParked = max(maxParked, parked)
		fmt.Fprintf(out, row, time.Since(began).Round(time.Second), sent, delivered, ok, bad,
			s.tallies["guest fault"].ok.Load(), len(s.srv.Rooms()), sm.goroutines,
			fmt.Sprintf("%.1f", mib(sm.rss)), fmt.Sprintf("%.1f", mib(int64(sm.heap))), parked)
		return sm
	}
loop:
	for {
		select {
		case <-mix.Done():
			break loop
		case <-warmTimer.C:
			warm = takeSample()
		case <-tick.C:
			report()
		}
	}
	actors.Wait()

	// Drain: every healthy message sent must arrive.
	var failures []error
	dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer dcancel()
	for i, g := range s.groups {
		if err := g.WaitDelivered(dctx); err != nil {
			failures = append(failures, fmt.Errorf("healthy room %d: %w", i, err))
		}
	}
	runtime.GC()
	end := report()
	sent, delivered := s.healthyCounts()
	due := int64(0)
	for _, g := range s.groups {
		_, d, _ := g.Counts()
		due += d
	}

	fmt.Fprintf(out, "\nsummary after %v:\n", time.Since(began).Round(time.Second))
	st := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(st, "healthy messages sent\t%d\n", sent)
	fmt.Fprintf(st, "healthy deliveries\t%d of %d (lost %d)\n", delivered, due, due-delivered)
	for _, k := range s.kinds {
		t := s.tallies[k]
		fmt.Fprintf(st, "%s\t%d as expected, %d unexpected\n", k, t.ok.Load(), t.unexpected.Load())
		if t.unexpected.Load() > 0 {
			failures = append(failures, fmt.Errorf("%s: %d unexpected outcomes, the last: %w", k, t.unexpected.Load(), t.last()))
		}
	}
	fmt.Fprintf(st, "parked connections\tup to %v at once (the quiet talkers' connections park between messages)\n", maxParked)
	fmt.Fprintf(st, "goroutines\t%d after warm-up, %d at the end (bound +%d)\n", warm.goroutines, end.goroutines, s.cfg.MaxGoroutineGrowth)
	fmt.Fprintf(st, "RSS\t%.1f MiB after warm-up, %.1f MiB at the end (bound +%d MiB)\n", mib(warm.rss), mib(end.rss), s.cfg.MaxRSSGrowthMiB)
	st.Flush()
	if due != delivered {
		failures = append(failures, fmt.Errorf("healthy clients lost %d of %d deliveries", due-delivered, due))
	}
	if n := s.overruns.unexpected.Load(); n > 0 {
		failures = append(failures, fmt.Errorf("%d guest calls ran past %v, the last: %w", n, guestLimit, s.overruns.last()))
	}
	if sent == 0 {
		failures = append(failures, errors.New("healthy clients sent nothing"))
	}
	if maxParked == 0 && runtime.GOOS == "linux" {
		failures = append(failures, errors.New("no connection was ever seen parked, though the quiet talkers pause longer than the server's quiet time before parking"))
	}
	if end.goroutines > warm.goroutines+s.cfg.MaxGoroutineGrowth {
		failures = append(failures, fmt.Errorf("goroutines grew from %d to %d, beyond the bound of +%d", warm.goroutines, end.goroutines, s.cfg.MaxGoroutineGrowth))
	}
	if end.rss-warm.rss > s.cfg.MaxRSSGrowthMiB<<20 {
		failures = append(failures, fmt.Errorf("RSS grew from %.1f to %.1f MiB, beyond the bound of +%d MiB", mib(warm.rss), mib(end.rss), s.cfg.MaxRSSGrowthMiB))
	}
	if len(failures) == 0 {
		fmt.Fprintln(out, "PASS")
	}
	return errors.Join(failures...)
}

// gauge reads the server's gauge name from its metrics, or -1 if absent.
func (s *soak) gauge(name string) float64 {
	families, err := s.metrics.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func (s *soak) healthyCounts() (sent, delivered int64) {
	for _, g := range s.groups {
		sn, _, d := g.Counts()
		sent += sn
		delivered += d
	}
	return sent, delivered
}

func (s *soak) faultCounts() (ok, unexpected int64) {
	for k, t := range s.tallies {
		if k != "guest fault" {
			ok += t.ok.Load()
		}
		unexpected += t.unexpected.Load()
	}
	return ok, unexpected
}

// quietTalkerInterval is how often the clients of every other healthy room
// send: longer than the server's quiet time before parking (100 ms), so
// their connections park and wake between messages, while the other rooms'
// clients talk too often to park.
const quietTalkerInterval = 300 * time.Millisecond

// healthy makes every client of g send a message every interval.
func (s *soak) healthy(ctx context.Context, g *wsclient.Group, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := g.SendAll(); err != nil {
				return // the drain reports the group's error
			}
		}
	}
}

// faultKind is one way a client misbehaves, and the close code it must
// get (0: the connection just ends, with or without a close frame).
type faultKind struct {
	name  string
	write func(c *wsclient.Raw) error
	code  stateroom.CloseCode
}

var faultKinds = []faultKind{
	{"garbage bytes", func(c *wsclient.Raw) error {
		_, err := c.Write([]byte{0xf3, 0x91, 0x00, 0x7a, 0x55, 0xaa, 0x01, 0x02, 0x03, 0x04, 0x05})
		return err
	}, stateroom.CloseProtocolError},
	{"unmasked frame", func(c *wsclient.Raw) error {
		return c.WriteFrames(wsclient.Frame{Fin: true, Op: wsclient.OpText, Payload: []byte("h 0 0")})
	}, stateroom.CloseProtocolError},
	{"oversize message", func(c *wsclient.Raw) error {
		return c.WriteFrames(wsclient.Frame{Fin: true, Op: wsclient.OpBinary, Masked: true, Length: maxMessage + 1})
	}, stateroom.CloseMessageTooBig},
	{"invalid UTF-8", func(c *wsclient.Raw) error {
		return c.WriteFrames(wsclient.Message(wsclient.OpText, []byte("h \xff\xfe")))
	}, stateroom.CloseInvalidPayload},
	{"message flood", func(c *wsclient.Raw) error {
		fs := make([]wsclient.Frame, 2*server.DefaultMessageBurst+server.DefaultMessageRate)
		for i := range fs {
			fs[i] = wsclient.Message(wsclient.OpText, []byte("flood"))
		}
		return c.WriteFrames(fs...)
	}, stateroom.ClosePolicyViolation},
	{"truncated frame", func(c *wsclient.Raw) error {
		if err := c.WriteFrames(wsclient.Frame{Fin: true, Op: wsclient.OpBinary, Masked: true, Length: 500, Payload: []byte("part")}); err != nil {
			return err
		}
		return c.CloseWrite()
	}, 0},
	{"abrupt disconnect", func(c *wsclient.Raw) error { return c.Close() }, 0},
}

// faulty connects one faulty client after another to the healthy rooms,
// cycling through the fault kinds.
func (s *soak) faulty(ctx context.Context, worker int) {
	for i := worker; ctx.Err() == nil; i += s.cfg.FaultyWorkers {
		k := faultKinds[i%len(faultKinds)]
		url := s.base + "healthy-" + strconv.Itoa(i%s.cfg.Rooms)
		actx, cancel := actionContext()
		s.tallies[k.name].record(oneFault(actx, url, k))
		cancel()
		sleep(ctx, 20*time.Millisecond)
	}
}

func oneFault(ctx context.Context, url string, k faultKind) error {
	c, err := wsclient.DialRaw(ctx, url, wsclient.RawOptions{BufferSize: 4096})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := k.write(c); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if k.name == "abrupt disconnect" {
		return nil
	}
	closed, err := c.ReadClose(10 * time.Second)
	switch {
	case k.code == 0 && (err == nil || errors.Is(err, wsclient.ErrNoCloseFrame)):
		return nil
	case err != nil:
		return err
	case closed.Code != k.code:
		return fmt.Errorf("closed with %d %q, want %d", closed.Code, closed.Reason, k.code)
	}
	return nil
}

// stalled keeps a flooded room with one stalled reader at a time: a
// flooder streams large messages (within the rate limit) and reads its
// echoes, the stalled client reads nothing until the server has closed it,
// then must find the close frame 4000 behind what was queued.
func (s *soak) stalled(ctx context.Context) {
	url := s.base + "flood"
	for ctx.Err() == nil {
		s.tallies["stalled reader"].record(oneStall(ctx, s.srv, url))
	}
}

func oneStall(ctx context.Context, srv *server.Server, url string) error {
	stalled, err := wsclient.DialRaw(ctx, url, wsclient.RawOptions{})
	if err != nil {
		return ignoreEnd(ctx, err)
	}
	defer stalled.Close()
	flooder, err := wsclient.DialRaw(ctx, url, wsclient.RawOptions{})
	if err != nil {
		return ignoreEnd(ctx, err)
	}
	defer flooder.Close()
	var drain sync.WaitGroup
	defer drain.Wait()
	defer flooder.Close()
	drain.Go(func() {
		for {
			if _, err := flooder.ReadFrame(); err != nil {
				return
			}
		}
	})
	for clientsIn(srv, "flood") < 2 { // both taken in by the room
		if ctx.Err() != nil {
			return nil
		}
		sleep(ctx, 5*time.Millisecond)
	}
	big := bytes.Repeat([]byte{'f'}, floodPayload)
	tick := time.NewTicker(time.Second / (server.DefaultMessageRate / 2))
	defer tick.Stop()
	for clientsIn(srv, "flood") == 2 {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := flooder.WriteFrames(wsclient.Message(wsclient.OpBinary, big)); err != nil {
			return fmt.Errorf("flooding: %w", err)
		}
	}
	closed, err := stalled.ReadClose(20 * time.Second)
	if err != nil {
		return err
	}
	if closed.Code != stateroom.CloseSlowConsumer {
		return fmt.Errorf("stalled reader closed with %d %q, want %d", closed.Code, closed.Reason, stateroom.CloseSlowConsumer)
	}
	return nil
}

// guests makes the relay guest fault in turn in a few rooms, and checks the
// room's clients get 1011 and the room starts fresh.
func (s *soak) guests(ctx context.Context) {
	faults := []string{"t", "l", "g", "x", "o"}
	for i := 0; ctx.Err() == nil; i++ {
		url := s.base + "wasm-fault-" + strconv.Itoa(i%3)
		actx, cancel := actionContext()
		closed, err := wsclient.FaultGuest(actx, url, 2, wsclient.Message(wsclient.OpText, []byte(faults[i%len(faults)])), nil)
		if err == nil {
			for _, cl := range closed {
				if cl.Code != stateroom.CloseServiceFault {
					err = fmt.Errorf("guest fault %q: closed with %d %q, want %d", faults[i%len(faults)], cl.Code, cl.Reason, stateroom.CloseServiceFault)
				}
			}
		}
		if err == nil {
			err = wsclient.CheckFreshGuest(actx, url)
		}
		cancel()
		s.tallies["guest fault"].record(err)
		sleep(ctx, 200*time.Millisecond)
	}
}

// actionContext bounds one faulty client or guest fault. It is not derived
// from the run's context: an action under way when the run ends finishes
// and is checked, instead of failing on a deadline that is not its own.
func actionContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

// ignoreEnd drops an error caused by the end of the run.
func ignoreEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func clientsIn(srv *server.Server, id string) int {
	for _, r := range srv.Rooms() {
		if r.ID == id {
			return r.Clients
		}
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sample is the process's state at one moment.
type sample struct {
	goroutines int
	rss        int64
	heap       uint64
}

func takeSample() sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{goroutines: runtime.NumGoroutine(), rss: rss(), heap: ms.HeapInuse}
}

// rss reads the resident set size from /proc/self/status (0 where there
// is none).
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
