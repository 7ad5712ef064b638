package server

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/store"
)

// manyRooms is how many rooms the restart tests below save and restore.
const manyRooms = 1000

// manyRoomsOptions are the options of a server that 1,000 rooms are
// created on from one address in a few seconds.
func manyRoomsOptions(st store.Store) Options {
	return Options{Store: st, Logger: quietLogger, MaxRoomsCreatedPerIP: NoLimit, MaxConnectionsPerIP: NoLimit}
}

// eachRoom runs visit for rooms 0 to n-1, eight at a time, and returns the
// first error.
func eachRoom(n int, visit func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := visit(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// talk dials room i of ts, checks the greeting, sends msg if not empty and
// checks the answer, and closes the connection.
func talk(ts *httptest.Server, i int, greeting, msg, answer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, wsURL(ts, fmt.Sprintf("/ws/room-%04d", i)), client.Options{})
	if err != nil {
		return fmt.Errorf("room %d: dial: %w", i, err)
	}
	defer c.Close()
	exchange := []string{greeting}
	if msg != "" {
		if err := c.Send(ctx, stateroom.Text(msg)); err != nil {
			return fmt.Errorf("room %d: send: %w", i, err)
		}
		exchange = append(exchange, answer)
	}
	for _, want := range exchange {
		p, err := recv(c)
		if err != nil {
			return fmt.Errorf("room %d: read: %w", i, err)
		}
		if p.String() != want {
			return fmt.Errorf("room %d: got %q, want %q", i, p.Data, want)
		}
	}
	return nil
}

// saveManyRooms runs a server on a bbolt file at path, gives each of
// manyRooms rooms its own count, and shuts the server down, which saves
// them all.
func saveManyRooms(t testing.TB, path string) {
	st, err := store.Open(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var timers atomic.Int32
	s, err := New(tallyFactory(&timers), manyRoomsOptions(st))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	err = eachRoom(manyRooms, func(i int) error {
		return talk(ts, i, "n=0 restored=false", fmt.Sprintf("add:%d", i), fmt.Sprintf("n=%d", i))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with %d rooms: %v", manyRooms, err)
	}
}

// restoreManyRooms opens the bbolt file at path in a new server, as a
// restarted process would, and checks that every room of saveManyRooms
// comes back with its count when a client connects. stop shuts the
// server down and closes the file.
func restoreManyRooms(t testing.TB, path string) (stop func()) {
	st, err := store.Open(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var timers atomic.Int32
	s, err := New(tallyFactory(&timers), manyRoomsOptions(st))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
		st.Close()
	}
	err = eachRoom(manyRooms, func(i int) error {
		return talk(ts, i, fmt.Sprintf("n=%d restored=true", i), "", "")
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return stop
}

// TestThousandRoomsRestored: 1,000 rooms saved to a bbolt file by one
// server's Shutdown all come back, each with its own state, in the next
// server on the file.
func TestThousandRoomsRestored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	saveManyRooms(t, path)
	infos := func() int {
		st, err := store.Open(path, store.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		list, err := st.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	if n := infos(); n != manyRooms {
		t.Fatalf("%d rooms in the store after Shutdown, want %d", n, manyRooms)
	}
	start := time.Now()
	stop := restoreManyRooms(t, path)
	defer stop()
	t.Logf("%d rooms restored, each by one client's connection, 8 at a time, in %v (including the store's open and server.New)", manyRooms, time.Since(start))
}

// BenchmarkRestoreThousandRooms measures a restart onto a bbolt file of
// 1,000 saved rooms: open the file, server.New, and a client connecting to
// each room (eight at a time) and reading its restored state; against
// "fresh", the same 1,000 connections to a server without a store, whose
// rooms start empty. The file is made once, by a server's Shutdown, and
// copied before each round (not timed).
//
//	go test -run '^$' -bench BenchmarkRestoreThousandRooms -benchtime 5x -count 3 ./server/
func BenchmarkRestoreThousandRooms(b *testing.B) {
	dir := b.TempDir()
	saved := filepath.Join(dir, "saved.db")
	saveManyRooms(b, saved)
	b.Run("restored", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			path := filepath.Join(dir, "rooms.db")
			copyFile(b, saved, path)
			b.StartTimer()
			stop := restoreManyRooms(b, path)
			b.StopTimer()
			stop()
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1000rooms")
	})
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			var timers atomic.Int32
			s, err := New(tallyFactory(&timers), manyRoomsOptions(nil))
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(s)
			err = eachRoom(manyRooms, func(i int) error { return talk(ts, i, "n=0 restored=false", "", "") })
			b.StopTimer()
			s.Shutdown(context.Background())
			ts.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1000rooms")
	})
}

// BenchmarkShutdownThousandRooms measures Shutdown of a server with 1,000
// durable rooms, each with an event not yet checkpointed (the interval is
// an hour), so Shutdown saves every one to a bbolt file before it returns.
//
//	go test -run '^$' -bench BenchmarkShutdownThousandRooms -benchtime 3x -count 3 ./server/
func BenchmarkShutdownThousandRooms(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(filepath.Join(b.TempDir(), "rooms.db"), store.BoltOptions{})
		if err != nil {
			b.Fatal(err)
		}
		opts := manyRoomsOptions(st)
		opts.CheckpointInterval = time.Hour
		var timers atomic.Int32
		s, err := New(tallyFactory(&timers), opts)
		if err != nil {
			b.Fatal(err)
		}
		ts := httptest.NewServer(s)
		err = eachRoom(manyRooms, func(i int) error {
			return talk(ts, i, "n=0 restored=false", fmt.Sprintf("add:%d", i), fmt.Sprintf("n=%d", i))
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b.StartTimer()
		err = s.Shutdown(ctx)
		b.StopTimer()
		cancel()
		ts.Close()
		if err != nil {
			b.Fatal(err)
		}
		if list, err := st.List(context.Background()); err != nil || len(list) != manyRooms {
			b.Fatalf("%d rooms saved by Shutdown (%v), want %d", len(list), err, manyRooms)
		}
		st.Close()
		b.StartTimer()
	}
}

// copyFile copies the file from to to.
func copyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}
