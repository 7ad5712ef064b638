// Command snapper is a durable service the guest package's tests build to a
// module: a stateroom.Snapshotter whose state is a counter (and, for
// benchmarks, a blob), so that its room survives Snapshot, a new instance
// and Restore through the ABI's snapshot exports. Text commands:
//
//	inc         add one to the counter and reply with it
//	get         reply "n=N restored=BOOL blob=LEN"
//	clients     reply the clients its Init named, as "clients=1,2"
//	blob N      make the state hold N more bytes (a pseudo-random mix)
//	emit TEXT   make the next snapshots exactly TEXT
//	fail        make Snapshot fail
//
// Restore takes "v1:N:BLOB"; "v0:..." is an older format it declares
// incompatible (stateroom.ErrIncompatibleSnapshot), "panic" panics, and
// anything else is refused.
package main

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

type snapper struct {
	stateroom.BaseService
	n        int
	blob     []byte
	restored bool
	clients  []stateroom.ClientID // InitEvent.Clients
	emit     *string
	fail     bool
}

func (s *snapper) Init(_ stateroom.Room, ev stateroom.InitEvent) {
	s.restored, s.clients = ev.Restored, ev.Clients
}

func (s *snapper) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	cmd, arg, _ := strings.Cut(ev.Payload.String(), " ")
	reply := func(text string) { room.Send(stateroom.To(ev.Client), stateroom.Text(text)) }
	switch cmd {
	case "inc":
		s.n++
		reply(strconv.Itoa(s.n))
	case "get":
		reply("n=" + strconv.Itoa(s.n) + " restored=" + strconv.FormatBool(s.restored) + " blob=" + strconv.Itoa(len(s.blob)))
	case "clients":
		ids := make([]string, len(s.clients))
		for i, id := range s.clients {
			ids[i] = id.String()
		}
		reply("clients=" + strings.Join(ids, ","))
	case "blob":
		n, _ := strconv.Atoi(arg)
		x := uint32(len(s.blob)) + 1
		for range n {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			s.blob = append(s.blob, "abcdefgh"[x%8]) // compresses about as well as text
		}
	case "emit":
		s.emit = &arg
	case "fail":
		s.fail = true
	}
}

func (s *snapper) Snapshot() ([]byte, error) {
	if s.fail {
		return nil, errors.New("snapper: asked to fail")
	}
	if s.emit != nil {
		return []byte(*s.emit), nil
	}
	b := append([]byte("v1:"), strconv.Itoa(s.n)...)
	b = append(b, ':')
	return append(b, s.blob...), nil
}

var errIncompatible = errors.New("snapper: a v0 snapshot")

func (s *snapper) Restore(b []byte) error {
	switch {
	case bytes.HasPrefix(b, []byte("v0:")):
		return errors.Join(errIncompatible, stateroom.ErrIncompatibleSnapshot)
	case string(b) == "panic":
		panic("snapper: asked to panic in Restore")
	case bytes.HasPrefix(b, []byte("v1:")):
		num, blob, ok := bytes.Cut(b[3:], []byte(":"))
		n, err := strconv.Atoi(string(num))
		if !ok || err != nil {
			break
		}
		s.n, s.blob = n, blob // the bytes are the service's to keep
		return nil
	}
	return errors.New("snapper: not a snapper snapshot")
}

func init() {
	guest.Register(stateroom.New(func(string) *snapper { return &snapper{} }))
}

func main() {}
