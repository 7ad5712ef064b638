package server

import (
	"bufio"
	"context"
	"io"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/hub"
)

// benchClients is the fan-out of the broadcast benchmarks.
const benchClients = 50

// benchWindow bounds the broadcasts in flight, far below the send queue.
const benchWindow = 64

// fanout is a service that broadcasts every message it gets.
type fanout struct{ stateroom.BaseService }

func (fanout) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	r.Send(stateroom.Everyone, ev.Payload)
}

// BenchmarkBroadcast measures one room fanning a 64-byte message out to 50
// clients over loopback sockets: a driver client sends b.N messages, the
// service broadcasts each, and 50 raw readers count the frames. ns/frame is
// the wall time per delivered frame, everything included (driver, server,
// readers share the machine).
func BenchmarkBroadcast(b *testing.B) {
	// The driver sends far faster than the default MessageRate; a limit
	// it never reaches keeps the limiter's cost in the measurement.
	s, err := New(stateroom.New(func(string) fanout { return fanout{} }), Options{Logger: quietLogger, MessageRate: 1e12, MessageBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Shutdown(context.Background())
	runBroadcast(b, wsURL(ts, "/ws/bench"))
}

// BenchmarkBroadcastGorilla is the same fan-out through bench/hub, the
// gorilla/websocket hub `stateroom bench` compares with (a channel and a
// writer goroutine per client, one WriteMessage each), for the decision
// between the two libraries.
func BenchmarkBroadcastGorilla(b *testing.B) {
	h, err := hub.New(hub.Options{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		h.Shutdown(ctx)
		ts.Close()
	}()
	runBroadcast(b, wsURL(ts, "/ws/bench"))
}

// runBroadcast drives a broadcast benchmark with raw gobwas clients rather
// than package client: the readers parse frame headers by hand and
// allocate nothing, so allocs/op is the server's alone, and they add no
// goroutines or copies of their own to the CPU measured.
func runBroadcast(b *testing.B, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	counts := make([]atomic.Int64, benchClients)
	var readers sync.WaitGroup
	var conns []io.Closer
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for i := range benchClients {
		nc, br, _, err := ws.Dial(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, nc)
		if br == nil {
			br = bufio.NewReaderSize(nc, 4096)
		}
		readers.Go(func() {
			// Server frames here are unmasked with payloads under 126 bytes
			// (or pings): two header bytes, parsed by hand so the readers
			// allocate nothing and allocs/op is the server's.
			var h [2]byte
			for {
				if _, err := io.ReadFull(br, h[:]); err != nil {
					return
				}
				if _, err := br.Discard(int(h[1] & 0x7f)); err != nil {
					return
				}
				if ws.OpCode(h[0]&0x0f) == ws.OpText {
					counts[i].Add(1)
				}
			}
		})
	}
	driver, dbr, _, err := ws.Dial(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	conns = append(conns, driver)
	// The driver is in the room too and gets every broadcast: it must read
	// them, or once its socket buffers and send queue fill (around 65,000
	// frames) the server closes it as a slow consumer and drops the rest
	// of its messages.
	var driverIn io.Reader = driver
	if dbr != nil {
		driverIn = dbr
	}
	readers.Go(func() { io.Copy(io.Discard, driverIn) })
	msg := ws.MustCompileFrame(ws.MaskFrameWith(ws.NewTextFrame([]byte(strings.Repeat("x", 64))), [4]byte{1, 2, 3, 4}))
	base := make([]int64, benchClients) // frames each reader got before the timer started
	waitDelivered := func(want int64) {
		for i := range counts {
			for counts[i].Load()-base[i] < want {
				if ctx.Err() != nil {
					b.Fatalf("reader %d stuck at %d of %d frames", i, counts[i].Load(), want)
				}
				runtime.Gosched()
			}
		}
	}
	// A client counts as joined once a broadcast reached it: the upgrade
	// answer can reach the client before the server has added it. Send
	// until every reader got one, then count from there.
	for joined := false; !joined; {
		if _, err := driver.Write(msg); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		joined = true
		for i := range counts {
			joined = joined && counts[i].Load() > 0
		}
	}
	time.Sleep(10 * time.Millisecond) // let the warm-up broadcasts land
	for i := range counts {
		base[i] = counts[i].Load()
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		if _, err := driver.Write(msg); err != nil {
			b.Fatal(err)
		}
		if i%benchWindow == 0 {
			waitDelivered(int64(i - benchWindow))
		}
	}
	waitDelivered(int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchClients), "ns/frame")
}

// BenchmarkChurn measures the life of a short room, as `stateroom bench
// churn` drives it: a client connects to a fresh room, sends one message,
// waits for the echo, sends a close frame and hangs up; the room ends at
// once (EndRoomsImmediately). Four clients run at a time. ns/op is wall
// time per room, client included.
func BenchmarkChurn(b *testing.B) {
	s, err := New(stateroom.New(func(string) fanout { return fanout{} }), Options{
		Logger:          quietLogger,
		RoomGracePeriod: EndRoomsImmediately,
		// A load generator on one address creates rooms far faster than
		// a client may: the budget is not what this measures.
		MaxRoomsCreatedPerIP: NoLimit,
	})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Raw clients, frames compiled once: package client's goroutines and
	// copies would share the CPU and allocations measured as the server's.
	msg := ws.MustCompileFrame(ws.MaskFrameWith(ws.NewTextFrame([]byte("ping")), [4]byte{1, 2, 3, 4}))
	bye := ws.MustCompileFrame(ws.MaskFrameWith(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")), [4]byte{1, 2, 3, 4}))
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(2) // 4 clients on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			nc, br, _, err := ws.Dial(ctx, wsURL(ts, "/ws/churn-"+strconv.FormatInt(i, 10)))
			if err != nil {
				b.Error(err)
				return
			}
			var in io.Reader = nc
			if br != nil {
				in = br
			}
			if _, err := nc.Write(msg); err != nil {
				b.Error(err)
			}
			if fr, err := readFrame(in); err != nil || string(fr.Payload) != "ping" {
				b.Errorf("echo: %q, %v", fr.Payload, err)
			}
			nc.Write(bye)
			nc.Close()
		}
	})
	b.StopTimer()
	// Every room has ended before the next benchmark round starts.
	for s.reg.RoomCount() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}
