package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
)

// BenchmarkForwardedRoundTrip measures a message's round trip (client ->
// room -> the same client) for a client on the node that owns the room
// ("direct") and for one on another node ("forwarded": gateway -> owner ->
// gateway over NATS), in one 3-node cluster in this process. It reports the
// p50 and p99 round trip; the forwarded figures minus the direct ones are
// what forwarding adds.
//
//	go test -run '^$' -bench ForwardedRoundTrip -benchtime 2000x ./cluster
func BenchmarkForwardedRoundTrip(b *testing.B) {
	nodes := startNodes(b, 3, DefaultLeaseTTL)
	first := dial(b, nodes[0], "bench")
	await(b, first, "v=0", 10*time.Second)
	owner := owning(nodes, "bench")
	var other *testNode
	for _, tn := range nodes {
		if tn != owner {
			other = tn
			break
		}
	}
	for _, tc := range []struct {
		name string
		node *testNode
	}{{"direct", owner}, {"forwarded", other}} {
		b.Run(tc.name, func(b *testing.B) {
			c := dial(b, tc.node, "bench")
			await(b, c, "v=0", 10*time.Second)
			rtts := make([]time.Duration, 0, b.N)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				msg := "ping" + strconv.Itoa(i)
				start := time.Now()
				if err := c.Send(ctx, stateroom.Text(msg)); err != nil {
					b.Fatal(err)
				}
				await(b, c, msg, 10*time.Second)
				rtts = append(rtts, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkFanOut measures a room's broadcast with 64 clients, all on the
// room's node ("one-node") or spread over the 3 nodes ("three-nodes"): one
// client sends "inc" b.N times, every client receives each count. It
// reports frames delivered per second, and the process's CPU time (user
// and system, every goroutine: rooms, NATS servers and clients alike) per
// frame delivered, which a busy machine disturbs less than the rate.
//
//	go test -run '^$' -bench FanOut -benchtime 200x ./cluster
func BenchmarkFanOut(b *testing.B) {
	const clients = 64
	nodes := startNodes(b, 3, DefaultLeaseTTL)
	round := 0
	for _, tc := range []struct {
		name   string
		spread int
	}{{"one-node", 1}, {"three-nodes", 3}} {
		b.Run(tc.name, func(b *testing.B) {
			round++ // b.Run runs this more than once: a fresh room each time
			room := fmt.Sprintf("fan-%s-%d", tc.name, round)
			first := dial(b, nodes[0], room)
			await(b, first, "v=0", 10*time.Second)
			owner := owning(nodes, room)
			var on []*testNode
			on = append(on, owner)
			for _, tn := range nodes {
				if tn != owner && len(on) < tc.spread {
					on = append(on, tn)
				}
			}
			cs := []*client.Conn{first}
			for i := 1; i < clients; i++ {
				c := dial(b, on[i%len(on)], room)
				await(b, c, "v=0", 10*time.Second)
				cs = append(cs, c)
			}
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime(b)
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					if err := awaitErr(c, fmt.Sprintf("v=%d", b.N), 60*time.Second); err != nil {
						b.Error(err)
					}
				})
			}
			for range b.N {
				if err := first.Send(context.Background(), stateroom.Text("inc")); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*clients)/time.Since(start).Seconds(), "frames/s")
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N*clients), "cpu-ns/frame")
		})
	}
}

// cpuTime returns the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlacement measures placing new rooms: a claim of a room id no
// node owns yet (a lookup and a create in the replicated owners bucket of
// a 3-node cluster), one caller at a time and 16 at once.
//
//	go test -run '^$' -bench Placement -benchtime 3000x ./cluster
func BenchmarkPlacement(b *testing.B) {
	c := startCluster(b, 3)
	ds := openDirectories(b, c, DefaultLeaseTTL)
	ctx := context.Background()
	round := 0
	b.Run("sequential", func(b *testing.B) {
		round++
		for i := range b.N {
			if _, err := ds[i%3].claim(ctx, fmt.Sprintf("seq-%d-%d", round, i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rooms/s")
	})
	b.Run("16-callers", func(b *testing.B) {
		round++
		var next atomic.Int64
		b.SetParallelism(8) // 8 x GOMAXPROCS (2 here) = 16 callers
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1)
				if _, err := ds[i%3].claim(ctx, fmt.Sprintf("par-%d-%d", round, i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rooms/s")
	})
}
