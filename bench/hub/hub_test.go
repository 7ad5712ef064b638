package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
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

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func expect(t *testing.T, c *websocket.Conn, kind int, data string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, b, err := c.ReadMessage()
	if err != nil || k != kind || string(b) != data {
		t.Fatalf("read = %d %q %v; want %d %q", k, b, err, kind, data)
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
	if err := a.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{a, b} { // the sender too
		expect(t, c, websocket.TextMessage, "hello")
	}
	if err := b.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{a, b} { // binary stays binary
		expect(t, c, websocket.BinaryMessage, "\x00\x01\x02")
	}
	if err := other.WriteMessage(websocket.TextMessage, []byte("alone")); err != nil {
		t.Fatal(err)
	}
	expect(t, other, websocket.TextMessage, "alone") // and not r1's messages before it
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
// queue fills, and the others keep getting every message.
func TestSlowConsumerDropped(t *testing.T) {
	h, url := start(t, Options{SendQueue: 4})
	fast, slow := dial(t, url+"/ws/s"), dial(t, url+"/ws/s")
	roomSize(t, h, "s", 2)
	big := strings.Repeat("x", 64<<10) // fills socket buffers quickly
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := fast.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
				done <- err
				return
			}
			_ = fast.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, b, err := fast.ReadMessage(); err != nil || len(b) != len(big) {
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
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
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
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("client still reading after Shutdown")
	}
	_, resp, err := websocket.DefaultDialer.Dial(url+"/ws/x", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Shutdown: %v; want 503", err)
	}
	resp.Body.Close()
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
