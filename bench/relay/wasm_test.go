package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/internal/loadgen"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/server/servertest"
	"github.com/stateroom-go/stateroom/stateroomtest"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// TestWasmUpToDate re-assembles relay.wat and checks that both the
// committed relay.wasm and what Wasm returns are what wat2wasm makes of it,
// so a source edited without `go generate ./bench/relay` fails here.
func TestWasmUpToDate(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Fatal("wat2wasm is not on PATH: install wabt (apt-get install wabt), which CI does")
	}
	fresh := filepath.Join(t.TempDir(), "relay.wasm")
	if out, err := exec.Command("wat2wasm", "relay.wat", "-o", fresh).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm relay.wat: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("relay.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, want) {
		t.Error("relay.wasm is out of date with relay.wat: run `go generate ./bench/relay`")
	}
	if !bytes.Equal(Wasm(), want) {
		t.Error("Wasm() is not relay.wasm assembled from relay.wat")
	}
	// Wasm hands out copies: changing one must not change the next.
	w := Wasm()
	w[0] ^= 0xff
	if !bytes.Equal(Wasm(), want) {
		t.Error("changing what Wasm returned changed the next call's bytes")
	}
}

// compileWasm compiles the wasm relay for a test; it is closed with the
// test.
func compileWasm(t testing.TB, opts wasmhost.Options) *wasmhost.Module {
	t.Helper()
	opts.DisableCache = true
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mod, err := wasmhost.Compile(context.Background(), Wasm(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mod.Close(context.Background()); err != nil {
			t.Errorf("Module.Close: %v", err)
		}
	})
	return mod
}

// budgets are the two ways bench/relayserver runs the guest.
var budgets = []struct {
	name   string
	budget time.Duration
}{
	{"nobudget", wasmhost.NoBudget},
	{"budget", 0},
}

// event is one callback of a service, for driving native and wasm relays
// alike.
type event func(stateroom.Service, stateroom.Room)

func message(client stateroom.ClientID, p stateroom.Payload) event {
	return func(s stateroom.Service, r stateroom.Room) {
		s.Message(r, stateroom.MessageEvent{Client: client, Payload: p})
	}
}

// drive runs events through a fresh service of f and returns what it sent.
// The events call the service directly, with the recorder as their room,
// so that they can name any client id (the ABI carries all 32 bits); the
// sends are recorded, though outside the recorder's membership.
func drive(t testing.TB, f stateroom.Factory, events ...event) []stateroomtest.Sent {
	t.Helper()
	svc, err := f.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := svc.(io.Closer); ok {
		defer c.Close()
	}
	room := stateroomtest.NewRoom("r", svc)
	for _, ev := range events {
		ev(svc, room)
	}
	return room.Sent
}

// TestWasmMatchesNative: for the same events the guest sends what the
// native relay sends, and nothing for events other than messages.
func TestWasmMatchesNative(t *testing.T) {
	events := []event{
		func(s stateroom.Service, r stateroom.Room) { s.Connect(r, stateroom.ConnectEvent{Client: 1}) },
		func(s stateroom.Service, r stateroom.Room) { s.Connect(r, stateroom.ConnectEvent{Client: 4294967295}) },
		message(1, stateroom.Text("hi")),
		message(4294967295, stateroom.Binary([]byte{0, 255, 3})),
		message(1, stateroom.Text("")),
		message(1, stateroom.Binary(nil)),
		message(1, stateroom.Text("é")),
		message(1, stateroom.Binary(bytes.Repeat([]byte{7}, 200<<10))), // grows memory
		func(s stateroom.Service, r stateroom.Room) { s.Timer(r, stateroom.TimerEvent{}) },
		func(s stateroom.Service, r stateroom.Room) { s.Disconnect(r, stateroom.DisconnectEvent{Client: 1}) },
		message(2, stateroom.Text("after")),
	}
	native := drive(t, Factory(), events...)
	if len(native) != 7 {
		t.Fatalf("the native relay sent %d messages, want 7", len(native))
	}
	for _, b := range budgets {
		t.Run(b.name, func(t *testing.T) {
			got := drive(t, compileWasm(t, wasmhost.Options{EventBudget: b.budget}), events...)
			if d := diffSends(got, native); d != "" {
				t.Error(d)
			}
		})
	}
}

// diffSends describes how got differs from want, or returns "".
func diffSends(got, want []stateroomtest.Sent) string {
	if len(got) != len(want) {
		return fmt.Sprintf("sent %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.To != w.To || g.Payload.Binary != w.Payload.Binary || !bytes.Equal(g.Payload.Data, w.Payload.Data) {
			return fmt.Sprintf("send %d is to %v binary=%v %.40q (%d bytes); want to %v binary=%v %.40q (%d bytes)",
				i, g.To, g.Payload.Binary, g.Payload.Data, len(g.Payload.Data), w.To, w.Payload.Binary, w.Payload.Data, len(w.Payload.Data))
		}
	}
	return ""
}

// TestWasmHeapStaysFlat: the guest's allocator takes every event's buffer
// back, so a stream of large messages does not grow its memory past what
// one needs.
func TestWasmHeapStaysFlat(t *testing.T) {
	svc, err := compileWasm(t, wasmhost.Options{}).NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.(io.Closer).Close()
	mem := svc.(stateroom.MemoryReporter)
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	p := stateroom.Binary(make([]byte, 100<<10))
	room.Message(a, p)
	after1 := mem.MemoryBytes()
	sent := len(room.TakeSent())
	for range 200 {
		room.Message(a, p)
		sent += len(room.TakeSent()) // drop the recorded copies as we go
	}
	if got := mem.MemoryBytes(); got != after1 {
		t.Errorf("memory is %d bytes after 201 messages of 100 KiB, %d after the first; want no growth (stateroom_free must take the buffer back)", got, after1)
	}
	if sent != 201 {
		t.Errorf("sent %d messages, want 201", sent)
	}
}

// TestWasmMallocFailsCleanly: a message larger than the memory cap gets a
// failed malloc (the guest returns 0), not a trap or a corrupted heap.
func TestWasmMallocFailsCleanly(t *testing.T) {
	svc, err := compileWasm(t, wasmhost.Options{MemoryLimit: 64 << 10}).NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.(io.Closer).Close()
	room := stateroomtest.NewRoom("r", svc)
	a := room.Connect()
	defer func() {
		f, ok := recover().(*stateroom.Fault)
		if !ok || !errors.Is(f, wasmhost.ErrMalloc) {
			t.Errorf("a 100 KiB message in a 64 KiB memory panicked with %v; want a *stateroom.Fault wrapping wasmhost.ErrMalloc", f)
		}
	}()
	room.Message(a, stateroom.Binary(make([]byte, 100<<10)))
}

// FuzzWasmMatchesNative: for any message, the guest relays what the
// native relay relays.
func FuzzWasmMatchesNative(f *testing.F) {
	f.Add(uint32(1), []byte("hi"), false)
	f.Add(uint32(0), []byte{}, true)
	f.Add(uint32(4294967295), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, true)
	mod := compileWasm(f, wasmhost.Options{})
	f.Fuzz(func(t *testing.T, client uint32, data []byte, binary bool) {
		p := stateroom.Payload{Data: data, Binary: binary}
		if !binary {
			p.Data = []byte(strings.ToValidUTF8(string(data), "?")) // text frames are UTF-8
		}
		ev := message(stateroom.ClientID(client), p)
		if d := diffSends(drive(t, mod, ev, ev), drive(t, Factory(), ev, ev)); d != "" {
			t.Error(d)
		}
	})
}

// serveWasm serves the wasm relay on loopback as bench/relayserver --wasm
// does, limits off, and returns the tool's endpoint (no room).
func serveWasm(t *testing.T, budget time.Duration) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	f := compileWasm(t, wasmhost.Options{EventBudget: budget, Logger: logger})
	return servertest.Start(t, f, Unlimited(server.Options{RoomGracePeriod: server.EndRoomsImmediately, Logger: logger})) + "/ws"
}

// TestWasmRelayOverWebSockets: real clients in one room each get every
// message, verbatim, of its kind, in order, the sender included; a client
// in another room gets none of them.
func TestWasmRelayOverWebSockets(t *testing.T) {
	for _, b := range budgets {
		t.Run(b.name, func(t *testing.T) {
			url := serveWasm(t, b.budget)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dial := func(room string) *client.Conn {
				c, err := client.Dial(ctx, url+"/"+room, client.Options{MaxMessageSize: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			send := func(c *client.Conn, p stateroom.Payload) {
				if err := c.Send(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			// read returns the next message, or why the connection ended.
			read := func(c *client.Conn) (stateroom.Payload, error) { return c.Receive(ctx) }
			// A client is in the room from its Connect, which the server
			// runs just after the handshake completes: each newcomer sends
			// a join message and everyone in the room so far reads it, so
			// all three are members before the real messages flow.
			var clients []*client.Conn
			for range 3 {
				c := dial("a")
				clients = append(clients, c)
				send(c, stateroom.Text("join"))
				for j, m := range clients {
					if p, err := read(m); err != nil || p.Binary || string(p.Data) != "join" {
						t.Fatalf("client %d reading a join: %q (binary: %v) %v", j, p.Data, p.Binary, err)
					}
				}
			}
			other := dial("b")
			msgs := []stateroom.Payload{
				stateroom.Text("hello"),
				stateroom.Binary([]byte{0, 1, 254, 255}),
				stateroom.Text(""),
				stateroom.Binary(bytes.Repeat([]byte("xy"), 40<<10)),
				stateroom.Text("é and ☃"),
			}
			for i, m := range msgs {
				send(clients[i%len(clients)], m)
				// Wait for it everywhere before the next one, so that the
				// order of messages from different senders is fixed.
				for j, c := range clients {
					p, err := read(c)
					if err != nil {
						t.Fatalf("client %d reading message %d: %v", j, i, err)
					}
					if p.Binary != m.Binary || !bytes.Equal(p.Data, m.Data) {
						t.Errorf("client %d got message %d as binary=%v %.40q (%d bytes); want binary=%v %.40q (%d bytes)", j, i, p.Binary, p.Data, len(p.Data), m.Binary, m.Data, len(m.Data))
					}
				}
			}
			// Room b's only client hears its own message first: nothing of
			// room a's got there.
			send(other, stateroom.Text("b only"))
			if p, err := read(other); err != nil || p.Binary || string(p.Data) != "b only" {
				t.Errorf("room b's client read %q (binary: %v) %v; want its own text message \"b only\"", p.Data, p.Binary, err)
			}
		})
	}
}

// TestWasmFanout runs the load tool's fan-out check against the wasm
// relay with small counts: no message lost, duplicated or reordered.
func TestWasmFanout(t *testing.T) {
	for _, b := range budgets {
		t.Run(b.name, func(t *testing.T) {
			o := loadgen.Options{URL: serveWasm(t, b.budget), Rooms: 3, Clients: 4, Senders: 2, Window: 4, Messages: 100, Duration: 30 * time.Second}
			rep, err := loadgen.Fanout(context.Background(), o)
			if err != nil {
				t.Fatalf("Fanout: %v", err)
			}
			sent := int64(o.Rooms * o.Senders * o.Messages)
			if rep.Sent != sent || rep.Delivered != sent*int64(o.Clients) {
				t.Errorf("sent %d delivered %d; want %d and %d", rep.Sent, rep.Delivered, sent, sent*int64(o.Clients))
			}
			if rep.Lost != 0 || rep.Duplicates != 0 || rep.Reordered != 0 || rep.Foreign != 0 || rep.TimedOut {
				t.Errorf("lost %d dups %d reordered %d foreign %d timed out %v; want a clean run", rep.Lost, rep.Duplicates, rep.Reordered, rep.Foreign, rep.TimedOut)
			}
		})
	}
}
