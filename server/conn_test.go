package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stateroom-go/stateroom"
)

func TestTextAndBinaryStayApart(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{})
	c := dial(t, ts, "/ws/kinds")
	hello(t, c)
	bin := []byte{0, 1, 2, 0xff}
	sendPayload(t, c, stateroom.Binary(bin))
	binary, got := read(t, c)
	if !binary || got != string(bin) {
		t.Fatalf("got binary=%v %q, want binary %q", binary, got, bin)
	}
	send(t, c, "echo:héllo")
	expect(t, c, "héllo")

	// Sizes around the frame header's length encodings.
	for _, n := range []int{0, 125, 126, 65535, 65536, 200000} {
		send(t, c, fmt.Sprintf("bcast:%d", n))
		binary, got := read(t, c)
		if !binary || len(got) != n {
			t.Fatalf("bcast %d: got binary=%v, %d bytes", n, binary, len(got))
		}
	}
}

func TestClientLimitsAndProtocolErrors(t *testing.T) {
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{MaxMessageSize: 1000})

	// Broken by a client that otherwise behaves: the bad message is sent
	// by the client, or injected on its socket as one frame when package
	// client refuses to send it (invalid UTF-8 as text).
	clientCases := []struct {
		name   string
		bad    ws.Frame
		inject bool
		code   stateroom.CloseCode
	}{
		{
			name: "message too big",
			bad:  ws.NewBinaryFrame(make([]byte, 1001)),
			code: stateroom.CloseMessageTooBig,
		},
		{
			name:   "invalid UTF-8",
			bad:    ws.NewTextFrame([]byte("ok \xff\xfe")),
			inject: true,
			code:   stateroom.CloseInvalidPayload,
		},
	}
	for _, tc := range clientCases {
		t.Run(tc.name, func(t *testing.T) {
			c, nc := dialTapped(t, ts, "/ws/limits")
			id, inst := hello(t, c)
			sendPayload(t, c, stateroom.Binary(make([]byte, 1000)))
			if binary, got := read(t, c); !binary || len(got) != 1000 {
				t.Fatal("a message at the limit must pass")
			}
			if tc.inject {
				nc.inject(t, tc.bad)
			} else {
				sendPayload(t, c, stateroom.Payload{Data: tc.bad.Payload, Binary: tc.bad.Header.OpCode == ws.OpBinary})
			}
			if code, _, err := closeOf(c); err != nil || code != tc.code {
				t.Fatalf("got close %d, %v; want close %d", code, err, tc.code)
			}
			log.waitFor(t, fmt.Sprintf("%s disconnect %d", inst, id))
		})
	}

	mask := func(f ws.Frame) ws.Frame { return ws.MaskFrameWith(f, [4]byte{1, 2, 3, 4}) }
	// Frames package client never sends: the raw client writes them.
	rawCases := []struct {
		name   string
		frames []ws.Frame
		code   stateroom.CloseCode
	}{
		{
			name:   "unmasked frame",
			frames: []ws.Frame{ws.NewTextFrame([]byte("hi"))},
			code:   stateroom.CloseProtocolError,
		},
		{
			name:   "reserved opcode",
			frames: []ws.Frame{mask(ws.NewFrame(ws.OpCode(0x3), true, []byte("x")))},
			code:   stateroom.CloseProtocolError,
		},
		{
			name:   "RSV bit without extension",
			frames: []ws.Frame{mask(ws.Frame{Header: ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText, Length: 1}, Payload: []byte("x")})},
			code:   stateroom.CloseProtocolError,
		},
		{
			name:   "continuation without a start",
			frames: []ws.Frame{mask(ws.NewFrame(ws.OpContinuation, true, []byte("x")))},
			code:   stateroom.CloseProtocolError,
		},
		{
			name: "fragments over the limit",
			frames: []ws.Frame{
				mask(ws.NewFrame(ws.OpBinary, false, make([]byte, 600))),
				mask(ws.NewFrame(ws.OpContinuation, true, make([]byte, 600))),
			},
			code: stateroom.CloseMessageTooBig,
		},
		{
			name: "invalid UTF-8 split over fragments",
			frames: []ws.Frame{
				mask(ws.NewFrame(ws.OpText, false, []byte("ok \xe2"))),
				mask(ws.NewFrame(ws.OpContinuation, true, []byte("(("))),
			},
			code: stateroom.CloseInvalidPayload,
		},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts, "/ws/limits")
			for _, f := range tc.frames {
				c.writeFrame(t, f)
			}
			code, reason, _ := c.readUntilClose(t)
			if code != tc.code || reason == "" {
				t.Fatalf("got close %d %q, want %d with a reason", code, reason, tc.code)
			}
		})
	}

	t.Run("fragmented message with a ping inside", func(t *testing.T) {
		c := dialRaw(t, ts, "/ws/frag") // raw: package client neither fragments nor pings
		c.writeFrame(t, mask(ws.NewFrame(ws.OpText, false, []byte("echo:hel"))))
		c.writeFrame(t, mask(ws.NewPingFrame([]byte("p1"))))
		c.writeFrame(t, mask(ws.NewFrame(ws.OpContinuation, true, []byte("lo"))))
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		var got []string
		for len(got) < 3 {
			f, err := readFrame(c.br)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%v %s", f.Header.OpCode, f.Payload))
		}
		if !strings.HasPrefix(got[0], "1 hello") || got[1] != "10 p1" || got[2] != "1 hello" {
			t.Fatalf("got frames %q; want the hello, pong p1, then text hello", got)
		}
	})
	t.Run("client close is answered", func(t *testing.T) {
		c := dialRaw(t, ts, "/ws/bye") // raw: package client closes with 1000 only
		c.writeFrame(t, mask(ws.NewCloseFrame(ws.NewCloseFrameBody(4321, "done"))))
		code, _, _ := c.readUntilClose(t)
		if code != 4321 {
			t.Fatalf("close answered with %d, want the client's 4321", code)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	t.Parallel() // it waits out heartbeat timeouts
	var log eventLog
	_, ts := startServer(t, probeFactory(&log, ""), Options{
		// A timeout that spans many intervals: a loaded machine may
		// delay the live client's pong by a good part of a second, and
		// that must not fail the test.
		HeartbeatInterval: 50 * time.Millisecond,
		HeartbeatTimeout:  2 * time.Second,
	})
	// A live client answers pings by itself; its socket is tapped to
	// see that it was pinged and answered.
	live, liveSocket := dialTapped(t, ts, "/ws/hb")
	liveID, inst := hello(t, live)

	// A silent client sends nothing and answers nothing: a raw one, as
	// package client answers pings by itself.
	silent := dialRaw(t, ts, "/ws/hb")
	log.waitFor(t, inst+" connect 2")
	log.waitFor(t, inst+" disconnect 2")
	code, reason, _ := silent.readUntilClose(t)
	if code != stateroom.CloseHeartbeatTimeout || reason != "heartbeat timeout" {
		t.Fatalf("silent client closed with %d %q, want %d", code, reason, stateroom.CloseHeartbeatTimeout)
	}
	eventually(t, func() bool { return liveSocket.in.count(ws.OpPing) > 0 && liveSocket.out.count(ws.OpPong) > 0 }, "the live client to be pinged and answer")
	// The live client outlives the silent one by timeouts.
	time.Sleep(2 * 2 * time.Second)
	if n := log.count(fmt.Sprintf("%s disconnect %d", inst, liveID)); n != 0 {
		t.Fatal("a client answering pings was closed")
	}
}

func TestSlowConsumer(t *testing.T) {
	var log eventLog
	s, ts := startServer(t, probeFactory(&log, ""), Options{SendQueueMessages: 16, SendQueueBytes: 256 << 10})
	fast := dial(t, ts, "/ws/slow")
	_, inst := hello(t, fast)
	slow := dialRaw(t, ts, "/ws/slow") // never reads until the end: raw, as package client always reads
	log.waitFor(t, inst+" connect 2")

	// The fast client drives broadcasts of 64 KiB, one at a time: its own
	// queue never holds more than one, the slow client's grows until the
	// socket buffers are full and its queue overflows.
	const size = 64 << 10
	kicked := false
	for i := 0; i < 2000 && !kicked; i++ {
		send(t, fast, fmt.Sprintf("bcast:%d", size))
		for {
			binary, got := read(t, fast)
			if binary && len(got) == size {
				break
			}
			if got == "left 2" {
				kicked = true
			}
		}
		s.conns.each(func(c *conn) {
			c.mu.Lock()
			if n := c.queue.len(); c.queued > c.byteLimit || n > c.queueLimit {
				t.Errorf("queue over its bounds: %d frames, %d bytes", n, c.queued)
			}
			c.mu.Unlock()
		})
	}
	if !kicked {
		expect(t, fast, "left 2")
	}
	log.waitFor(t, inst+" disconnect 2")
	if n := log.count(inst + " disconnect 1"); n != 0 {
		t.Fatal("the fast client was closed too")
	}
	// The slow client, reading at last, finds what fitted in the socket,
	// then the close.
	code, reason, data := slow.readUntilClose(t)
	if code != stateroom.CloseSlowConsumer || reason != "slow consumer" {
		t.Fatalf("slow client closed with %d %q after %d messages, want %d", code, reason, data, stateroom.CloseSlowConsumer)
	}
	send(t, fast, "echo:still fine")
	expect(t, fast, "still fine")
}

func TestServerSendsInvalidUTF8(t *testing.T) {
	bad := stateroom.New(func(string) *badText { return &badText{} })
	_, ts := startServer(t, bad, Options{})
	c := dial(t, ts, "/ws/x")
	expect(t, c, "ok") // the invalid message between was dropped
	send(t, c, "x")
	binary, got := read(t, c)
	if !binary || !bytes.Equal([]byte(got), []byte{0xff}) {
		t.Fatalf("got binary=%v %q, want binary 0xff", binary, got)
	}
}

// badText sends invalid UTF-8 as text (dropped) and as binary (fine).
type badText struct{ stateroom.BaseService }

func (badText) Connect(r stateroom.Room, ev stateroom.ConnectEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Payload{Data: []byte{0xff}})
	r.Send(stateroom.To(ev.Client), stateroom.Text("ok"))
}

func (badText) Message(r stateroom.Room, ev stateroom.MessageEvent) {
	r.Send(stateroom.To(ev.Client), stateroom.Binary([]byte{0xff}))
}
