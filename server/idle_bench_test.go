package server

import (
	"context"
	"net"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

// idleConns is how many connections BenchmarkIdleConns holds open at once:
// enough for the per-connection figures to settle, few enough for the
// open-file limit (two descriptors each) and a quick run.
const idleConns = 4000

// idleRooms spreads the idle connections over this many rooms.
const idleRooms = 100

// BenchmarkIdleConns measures what an idle connection costs the server:
// it opens idleConns WebSocket connections over loopback (spread over
// idleRooms rooms; each sends one message so its reader has done work),
// waits until the server has them all and has parked them, and reports
// per connection the growth of the live heap (heap-B/conn) and of
// goroutine stacks (stack-B/conn) after a GC, and goroutines/conn. After
// closing them all it reports what is left (left-B/conn: heap and stacks
// not given back).
//
// The clients live in this process too: each is a bare net.Conn (about
// 0.4 KB of heap, see the tcp sub-benchmark, which holds bare TCP pairs),
// so heap-B/conn includes that share. They are not package client's
// Conns, whose two goroutines and buffers each would count as the
// server's here.
func BenchmarkIdleConns(b *testing.B) {
	b.Run("stateroom", func(b *testing.B) {
		s, err := New(stateroom.New(func(string) fanout { return fanout{} }), Options{
			Logger:              quietLogger,
			MaxConnections:      NoLimit,
			MaxConnectionsPerIP: NoLimit,
			RoomGracePeriod:     EndRoomsImmediately, // so "left" is what closed connections leave
			// Every round creates its idleRooms rooms again from one
			// address: the room-creation budget is not what this measures.
			MaxRoomsCreatedPerIP: NoLimit,
		})
		if err != nil {
			b.Fatal(err)
		}
		ts := httptest.NewServer(s)
		defer ts.Close()
		defer s.Shutdown(context.Background())
		runIdle(b, func(ctx context.Context, i int) (net.Conn, error) {
			nc, br, _, err := ws.Dial(ctx, wsURL(ts, "/ws/idle"+strconv.Itoa(i%idleRooms)))
			if err != nil {
				return nil, err
			}
			if br != nil {
				ws.PutReader(br)
			}
			// One message, so the connection has been through the read
			// path; the room echoes it to everyone, which the client
			// leaves unread in its socket.
			msg := ws.MaskFrameInPlace(ws.NewTextFrame([]byte("hello")))
			return nc, ws.WriteFrame(nc, msg)
		}, func() int {
			return s.conns.count()
		}, func() bool { parked, all := parkedConns(s); return parked == all }, func() {})
	})
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var held []net.Conn
		acceptDone := make(chan struct{})
		go func() {
			defer close(acceptDone)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		defer func() {
			ln.Close()
			<-acceptDone
		}()
		var d net.Dialer
		runIdle(b, func(ctx context.Context, _ int) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		}, func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(held)
		}, func() bool { return true }, func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range held {
				c.Close()
			}
			held = nil
		})
	})
}

// runIdle runs the rounds of an idle-connection benchmark: dial opens
// connection i, open reports how many the server holds now, settled
// whether the ones it holds have reached their idle state, and release
// closes the server's side of closed connections where the server does not
// notice by itself.
func runIdle(b *testing.B, dial func(ctx context.Context, i int) (net.Conn, error), open func() int, settled func() bool, release func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A first connection starts what lives as long as the server (the
	// heartbeat sweeper), so the rounds measure connections only.
	warm, err := dial(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	waitIdle(ctx, b, func() bool { return open() == 1 }, "the server to hold the first connection")
	warm.Close()
	release()
	waitIdle(ctx, b, func() bool { return open() == 0 }, "the server to drop the first connection")

	var heap, stack, goroutines, left float64
	for range b.N {
		before := memNow()
		g0 := runtime.NumGoroutine()
		conns := make([]net.Conn, 0, idleConns)
		for i := range idleConns {
			nc, err := dial(ctx, i)
			if err != nil {
				b.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, nc)
		}
		waitIdle(ctx, b, func() bool { return open() == idleConns && settled() }, "the server to hold every connection, idle")
		during := memNow()
		heap += float64(during.heap - before.heap)
		stack += float64(during.stack - before.stack)
		goroutines += float64(runtime.NumGoroutine() - g0)

		for _, c := range conns {
			c.Close()
		}
		release()
		waitIdle(ctx, b, func() bool { return open() == 0 && runtime.NumGoroutine() <= g0 }, "the server to drop every connection")
		after := memNow()
		left += float64(after.heap + after.stack - before.heap - before.stack)
	}
	n := float64(b.N * idleConns)
	b.ReportMetric(heap/n, "heap-B/conn")
	b.ReportMetric(stack/n, "stack-B/conn")
	b.ReportMetric(goroutines/n, "goroutines/conn")
	b.ReportMetric(left/n, "left-B/conn")
}

type memFigures struct{ heap, stack int64 }

// memNow collects garbage and returns the heap and stack memory in use.
func memNow() memFigures {
	runtime.GC()
	runtime.GC() // a second cycle frees what finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memFigures{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse)}
}

// waitIdle polls cond until it holds or ctx ends.
func waitIdle(ctx context.Context, b *testing.B, cond func() bool, what string) {
	for !cond() {
		if ctx.Err() != nil {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
