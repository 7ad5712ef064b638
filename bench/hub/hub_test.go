package hub

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom"
	// Named so: the hub's own connection type is called client.
	srclient "github.com/stateroom-go/stateroom/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, opts Options) (*Hub, string) {
	t.Helper()
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dial connects a client of package client (Stateroom's Go client),
// without reconnection.
func dial(t *testing.T, url string) *srclient.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := srclient.Dial(ctx, url, srclient.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *srclient.Conn, p stateroom.Payload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message, or why the connection ended, or
// context.DeadlineExceeded if wait passed first.
func next(c *srclient.Conn, wait time.Duration) (stateroom.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Receive(ctx)
}

func expect(t *testing.T, c *srclient.Conn, want stateroom.Payload) {
	t.Helper()
	p, err := next(c, 5*time.Second)
	if err != nil || p.Binary != want.Binary || !bytes.Equal(p.Data, want.Data) {
		t.Fatalf("read = binary=%v %q %v; want binary=%v %q", p.Binary, p.Data, err, want.Binary, want.Data)
	}
}

// roomSize polls until room id has n clients, so that a message sent next
// reaches all of them.
func roomSize(t *testing.T, h *Hub, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := clients(h, id)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %q has %d clients, want %d", id, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// clients returns the number of clients in room id.
func clients(h *Hub, id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	rm := h.rooms[id]
	if rm == nil {
		return 0
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.clients)
}

func TestRelaysToEveryoneInTheRoom(t *testing.T) {
	h, url := start(t, Options{})
	a, b := dial(t, url+"/ws/r1"), dial(t, url+"/ws/r1")
	other := dial(t, url+"/ws/r2")
	roomSize(t, h, "r1", 2)
	roomSize(t, h, "r2", 1)
	send(t, a, stateroom.Text("hello"))
	for _, c := range []*srclient.Conn{a, b} { // the sender too
		expect(t, c, stateroom.Text("hello"))
	}
	send(t, b, stateroom.Binary([]byte{0, 1, 2}))
	for _, c := range []*srclient.Conn{a, b} { // binary stays binary
		expect(t, c, stateroom.Binary([]byte{0, 1, 2}))
	}
	send(t, other, stateroom.Text("alone"))
	expect(t, other, stateroom.Text("alone")) // and not r1's messages before it
}

func TestRoomRemovedWhenEmpty(t *testing.T) {
	h, url := start(t, Options{})
	c := dial(t, url+"/ws/gone")
	roomSize(t, h, "gone", 1)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		n := len(h.rooms)
		h.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rooms left after the last client closed", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlowConsumerDropped: a client that never reads is dropped when its
// queue fills, and the others keep getting every message. (The slow
// client's Conn reads its socket until its Messages buffer is full, then
// stops: the hub's queue fills all the same, a little later.)
func TestSlowConsumerDropped(t *testing.T) {
	h, url := start(t, Options{SendQueue: 4})
	fast, slow := dial(t, url+"/ws/s"), dial(t, url+"/ws/s")
	roomSize(t, h, "s", 2)
	big := strings.Repeat("x", 64<<10) // fills socket buffers quickly
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := fast.Send(context.Background(), stateroom.Text(big)); err != nil {
				done <- err
				return
			}
			if p, err := next(fast, 5*time.Second); err != nil || len(p.Data) != len(big) {
				done <- errors.Join(err, errors.New("fast client lost its own message"))
				return
			}
			if clients(h, "s") == 1 {
				done <- nil
				return
			}
			if i > 10000 {
				done <- errors.New("slow client never dropped")
				return
			}
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The dropped client is closed: once it reads, it reaches the end.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := next(slow, time.Until(deadline)); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the dropped client's connection stayed open")
			}
			break
		}
	}
}

func TestBadRequests(t *testing.T) {
	_, url := start(t, Options{})
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws") + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /elsewhere: %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get("http" + strings.TrimPrefix(url, "ws") + "/ws/room")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET /ws/room: %d, want 400", resp.StatusCode)
	}
	if _, err := New(Options{SendQueue: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("New with a negative SendQueue: %v, want ErrInvalidOptions", err)
	}
}

func TestShutdownClosesClients(t *testing.T) {
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c := dial(t, url+"/ws/x")
	roomSize(t, h, "x", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := next(c, 5*time.Second); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client still reading after Shutdown: %v", err)
	}
	late, err := srclient.Dial(ctx, url+"/ws/x", srclient.Options{})
	if he, ok := errors.AsType[*srclient.HandshakeError](err); !ok || he.Status != http.StatusServiceUnavailable {
		if err == nil {
			late.Close()
		}
		t.Fatalf("dial after Shutdown: %v; want a 503 refusal", err)
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
