package wsclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// This file speaks to wasmhost's relay test guest (wasmhost/testdata/
// relay.wat): it broadcasts, as a binary message, the ABI encoding of
// every event it gets, and the first byte of a text message can order a
// fault ('t' trap, 'l' infinite loop, 'g' memory growth, 'x' proc_exit,
// 'o' a send out of bounds).

// RelayGuestText is an [Unwrap] for the relay test guest: it extracts the
// text of a relayed MessageToProcess::Message (tag 3, the sender as a u32,
// the payload's tag, 1 for text, and its u64 length, then the bytes).
func RelayGuestText(isBinary bool, data []byte) ([]byte, bool) {
	if !isBinary || len(data) < 20 || binary.LittleEndian.Uint32(data) != 3 || binary.LittleEndian.Uint32(data[8:]) != 1 {
		return nil, false
	}
	return data[20:], true
}

// RelayGuestConnect is the encoding of MessageToProcess::Connect{client},
// which the relay guest broadcasts when client joins.
func RelayGuestConnect(client uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0}, client)
}

// FaultGuest connects n clients to url, a room of the relay guest, waiting
// until the room has taken each in (it sees its own Connect event), then
// makes the first one send fault, calls during (nil for nothing), and
// returns how the server closed each client.
func FaultGuest(ctx context.Context, url string, n int, fault Frame, during func()) ([]Closed, error) {
	var victims []*Raw
	defer func() {
		for _, v := range victims {
			v.Close()
		}
	}()
	for i := range n {
		v, err := DialRaw(ctx, url, RawOptions{})
		if err != nil {
			return nil, err
		}
		victims = append(victims, v)
		if err := v.awaitConnect(); err != nil {
			return nil, fmt.Errorf("wsclient: client %d of %s: %w", i, url, err)
		}
	}
	if err := victims[0].WriteFrames(fault); err != nil {
		return nil, err
	}
	if during != nil {
		during()
	}
	out := make([]Closed, n)
	for i, v := range victims {
		cl, err := v.ReadClose(waitFor(ctx))
		if err != nil {
			return nil, fmt.Errorf("wsclient: client %d of %s after the fault: %w", i, url, err)
		}
		out[i] = cl
	}
	return out, nil
}

// CheckFreshGuest connects to url and checks that the relay guest's room
// starts over there: the client is client 1 of a new room and a message
// comes back relayed.
func CheckFreshGuest(ctx context.Context, url string) error {
	c, err := DialRaw(ctx, url, RawOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	const hello = "hello again"
	if err := c.WriteFrames(Message(OpText, []byte(hello))); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(waitFor(ctx)))
	for _, want := range [][]byte{RelayGuestConnect(1), []byte(hello)} {
		f, err := c.ReadFrame()
		if err != nil {
			return fmt.Errorf("wsclient: the next connection to %s: %w", url, err)
		}
		if f.Op != OpBinary || !bytes.HasSuffix(f.Payload, want) {
			return fmt.Errorf("wsclient: the next connection to %s got op %d % x; want an event ending in % x", url, f.Op, f.Payload, want)
		}
	}
	return c.WriteFrames(Message(OpClose, CloseBody(1000, "")))
}

// awaitConnect reads until the relay guest's Connect event: the first one
// a client sees is its own, sent once the room has taken it in.
func (c *Raw) awaitConnect() error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return fmt.Errorf("waiting for its Connect event: %w", err)
		}
		if f.Op == OpBinary && len(f.Payload) == 8 && bytes.HasPrefix(f.Payload, []byte{1, 0, 0, 0}) {
			return nil
		}
	}
}

// waitFor is how long to wait for the server: until ctx's deadline, or
// 10 s without one.
func waitFor(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return 10 * time.Second
}
