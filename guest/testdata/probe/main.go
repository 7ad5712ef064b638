// Command probe is the service the guest package's tests build to a module:
// each text command exercises one part of the SDK.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

// buildNote is set by internal/gobuild's tests with -ldflags=-X; "note"
// returns it.
var buildNote = "unset"

type probe struct {
	stateroom.BaseService
	roomID string
	kept   []byte // grows only on "keep", to show memory tracking works
}

func (p *probe) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	room.Send(stateroom.To(ev.Client), stateroom.Text("room:"+p.roomID+":"+room.ID()))
}

func (p *probe) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("left "+ev.Client.String()))
}

func (p *probe) Timer(room stateroom.Room, _ stateroom.TimerEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("timer"))
}

func (p *probe) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if ev.Payload.Binary {
		// Copy the payload as a service keeping state would: garbage
		// for the collector on every event.
		c := append([]byte(nil), ev.Payload.Data...)
		room.Send(stateroom.To(ev.Client), stateroom.Binary(c[:min(len(c), 4)]))
		return
	}
	cmd, arg, _ := strings.Cut(ev.Payload.String(), " ")
	switch cmd {
	case "time":
		room.Send(stateroom.To(ev.Client), stateroom.Text(strconv.FormatInt(time.Now().UnixNano(), 10)))
	case "rand":
		var b [16]byte
		rand.Read(b[:])
		room.Send(stateroom.To(ev.Client), stateroom.Text(hex.EncodeToString(b[:])))
	case "timer":
		ms, _ := strconv.Atoi(arg)
		room.SetTimer(time.Duration(ms) * time.Millisecond)
	case "all":
		room.Send(stateroom.Everyone, stateroom.Text(arg))
	case "others":
		room.Send(stateroom.EveryoneExcept(ev.Client), stateroom.Text(arg))
	case "keep":
		n, _ := strconv.Atoi(arg)
		p.kept = append(p.kept, make([]byte, n)...)
	case "kept": // how many bytes "keep" kept: state the host's raw snapshots carry
		room.Send(stateroom.To(ev.Client), stateroom.Text(strconv.Itoa(len(p.kept))))
	case "note":
		room.Send(stateroom.To(ev.Client), stateroom.Text(buildNote))
	case "panic":
		panic("probe: asked to panic")
	case "close": // close ID CODE REASON...
		idArg, rest, _ := strings.Cut(arg, " ")
		codeArg, reason, _ := strings.Cut(rest, " ")
		id, _ := strconv.ParseUint(idArg, 10, 32)
		code, _ := strconv.ParseUint(codeArg, 10, 16)
		if err := room.Close(stateroom.ClientID(id), stateroom.CloseCode(code), reason); err != nil {
			room.Send(stateroom.To(ev.Client), stateroom.Text("close refused: "+err.Error()))
		}
	case "sleep": // sleep MS: time.Sleep, which is WASI poll_oneoff
		ms, _ := strconv.Atoi(arg)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		room.Send(stateroom.To(ev.Client), stateroom.Text("slept"))
	default:
		room.Send(stateroom.To(ev.Client), ev.Payload)
	}
}

func init() {
	guest.Register(stateroom.New(func(roomID string) *probe { return &probe{roomID: roomID} }))
}

func main() {}
