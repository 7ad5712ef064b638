// Package servertest plays scripted conversations ("transcripts") against a
// Stateroom service through a real server and real WebSocket clients
// (package client) on loopback. The factory is a parameter, so one
// transcript checks a native service and its WebAssembly build alike.
package servertest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/server"
)

// Timeout bounds each expected message of a transcript.
const Timeout = 10 * time.Second

// Start serves f with opts (a nil Logger discards logs) on a loopback
// httptest server until the test ends, then shuts the server down, failing
// the test if Shutdown does. It returns the server's WebSocket base URL,
// ws://127.0.0.1:PORT: rooms are at that plus /ws/{room}.
func Start(t testing.TB, f stateroom.Factory, opts server.Options) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := server.New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// Transcript is one named conversation for [RunAll].
type Transcript struct {
	Name   string
	Script []string
}

// RunAll plays each transcript as a subtest, each against a fresh server
// for f with opts. An example defines its transcripts once and plays them
// against its native factory and its WebAssembly build alike.
func RunAll(t *testing.T, f stateroom.Factory, opts server.Options, transcripts []Transcript) {
	t.Helper()
	for _, tc := range transcripts {
		t.Run(tc.Name, func(t *testing.T) { Run(t, f, opts, tc.Script) })
	}
}

// Run starts a server for f with opts (a nil Logger discards logs), plays
// script against it and stops the server. Each line of the script is one
// step, the first word naming a client (any word without spaces) and an
// operator:
//
//	a+           client a connects to room "room"
//	a+ lobby     client a connects to room "lobby"
//	a> text      a sends a text message
//	a>> 00ff     a sends a binary message (hex)
//	a< text      a's next message is this text
//	a<< 00ff     a's next message is this binary (hex)
//	a<close 4000 the server closes a with this code
//	a-           a disconnects
//
// A step that expects a message waits for it up to Timeout; any other
// message arriving first fails the test.
func Run(t testing.TB, f stateroom.Factory, opts server.Options, script []string) {
	t.Helper()
	base := Start(t, f, opts) + "/ws/"
	clients := map[string]*client.Conn{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	for i, line := range script {
		name, op, arg, err := parse(line)
		if err != nil {
			t.Fatalf("script line %d: %v", i+1, err)
		}
		c := clients[name]
		if c == nil && op != "+" {
			t.Fatalf("script line %d %q: client %s has not connected; start with %q", i+1, line, name, name+"+")
		}
		step := fmt.Sprintf("line %d %q", i+1, line)
		switch op {
		case "+":
			if c != nil {
				t.Fatalf("%s: client %s is already connected", step, name)
			}
			room := arg
			if room == "" {
				room = "room"
			}
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			conn, err := client.Dial(ctx, base+room, client.Options{HandshakeTimeout: Timeout})
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", step, err) // a refusal says its HTTP status and the server's reason
			}
			clients[name] = conn
		case "-":
			c.Close()
			delete(clients, name)
		case ">", ">>":
			p := stateroom.Text(arg)
			if op == ">>" {
				data, err := hex.DecodeString(arg)
				if err != nil {
					t.Fatalf("%s: bad hex: %v", step, err)
				}
				p = stateroom.Binary(data)
			}
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			err := c.Send(ctx, p)
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		case "<", "<<":
			want, wantBinary := []byte(arg), op == "<<"
			if wantBinary {
				if want, err = hex.DecodeString(arg); err != nil {
					t.Fatalf("%s: bad hex: %v", step, err)
				}
			}
			got, err := next(c)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if got.Binary != wantBinary || !bytes.Equal(got.Data, want) {
				t.Fatalf("%s: got %s %q", step, kind(got), got.Data)
			}
		case "<close":
			code, err := strconv.Atoi(arg)
			if err != nil {
				t.Fatalf("%s: bad close code: %v", step, err)
			}
			got, err := next(c)
			var ce *client.CloseError
			if !errors.As(err, &ce) || ce.Code != stateroom.CloseCode(code) {
				t.Fatalf("%s: got %s %q, %v", step, kind(got), got.Data, err)
			}
			c.Close()
			delete(clients, name)
		}
	}
}

// parse splits a script line into client name, operator and argument.
func parse(line string) (name, op, arg string, err error) {
	head, arg, _ := strings.Cut(line, " ")
	for _, o := range []string{"<close", ">>", "<<", "+", "-", ">", "<"} {
		if n, ok := strings.CutSuffix(head, o); ok && n != "" {
			return n, o, arg, nil
		}
	}
	return "", "", "", fmt.Errorf("%q: want NAME followed by one of + - > >> < << <close, as in %q", line, "a> hello")
}

// next returns c's next message, or why none came within Timeout (the
// connection closed: c.Err says how).
func next(c *client.Conn) (stateroom.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	p, err := c.Receive(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return p, fmt.Errorf("no message within %v", Timeout)
	}
	return p, err
}

func kind(p stateroom.Payload) string {
	if p.Binary {
		return "binary"
	}
	return "text"
}
