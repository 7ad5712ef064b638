// Command probe is a guest service for internal/preinit's tests: it does at
// start-up what a pre-initialised module must carry over correctly (maps
// built in init, a timer and a clock reading taken in init, the
// environment read in init) and answers messages with what it sees at run
// time.
package main

import (
	"math/rand"
	randv2 "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

// Built during start-up: their entries are laid out by hash seeds frozen
// into the module.
var (
	byName = map[string]int{}
	byNum  = map[int]string{}
)

var (
	initTime  = time.Now()
	initTimer = time.NewTimer(time.Millisecond)
	initEnv   = os.Getenv("PREINIT_PROBE")
)

func init() {
	for i := range 1000 {
		s := "key-" + strconv.Itoa(i)
		byName[s] = i
		byNum[i] = s
	}
	guest.Register(stateroom.New(func(string) *probe { return &probe{} }))
}

func main() {}

type probe struct{ stateroom.BaseService }

func (*probe) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	var out string
	switch ev.Payload.String() {
	case "draw":
		out = draw()
	case "maps":
		out = checkMaps()
	case "clock":
		out = checkClock()
	case "env":
		out = "init=" + strconv.Quote(initEnv) + " now=" + strconv.Quote(os.Getenv("PREINIT_PROBE"))
	default:
		out = "unknown"
	}
	room.Send(stateroom.To(ev.Client), stateroom.Text(out))
}

// draw reports a math/rand/v2 number, a math/rand (top-level, unseeded)
// number, and 64 choices of select between two ready channels (the
// runtime's cheap generator picks).
func draw() string {
	a, b := make(chan int, 1), make(chan int, 1)
	var bits uint64
	for i := range 64 {
		a <- 0
		b <- 1
		select {
		case <-a:
			<-b
		case <-b:
			<-a
			bits |= 1 << i
		}
	}
	return "v2=" + strconv.FormatUint(randv2.Uint64(), 10) +
		" v1=" + strconv.FormatUint(rand.Uint64(), 10) +
		" select=" + strconv.FormatUint(bits, 10)
}

// checkMaps looks up every entry of the maps built in init, adds some and
// builds a new map.
func checkMaps() string {
	var bad []string
	for i := range 1000 {
		s := "key-" + strconv.Itoa(i)
		if v, ok := byName[s]; !ok || v != i {
			bad = append(bad, s)
		}
		if v := byNum[i]; v != s {
			bad = append(bad, strconv.Itoa(i))
		}
	}
	if len(byName) != 1000 {
		bad = append(bad, "len="+strconv.Itoa(len(byName)))
	}
	n := 0
	for range byName {
		n++
	}
	if n != 1000 {
		bad = append(bad, "iterated="+strconv.Itoa(n))
	}
	fresh := map[string]int{}
	for i := range 1000 {
		fresh["new-"+strconv.Itoa(i)] = i
		byName["more-"+strconv.Itoa(i)] = i
	}
	for i := range 1000 {
		if fresh["new-"+strconv.Itoa(i)] != i || byName["more-"+strconv.Itoa(i)] != i {
			bad = append(bad, "added "+strconv.Itoa(i))
			break
		}
	}
	for i := range 1000 {
		delete(byName, "more-"+strconv.Itoa(i))
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = bad[:5]
		}
		return "maps broken: " + strings.Join(bad, ", ")
	}
	return "maps ok"
}

// checkClock reports what the clocks say at run time about readings taken
// during start-up.
func checkClock() string {
	var bad []string
	if d := time.Since(initTime); d <= 0 {
		bad = append(bad, "time.Since(init)="+d.String())
	}
	t0 := time.Now()
	time.Sleep(2 * time.Millisecond)
	if d := time.Since(t0); d < 2*time.Millisecond {
		bad = append(bad, "slept "+d.String())
	}
	select {
	case <-initTimer.C:
	default:
		bad = append(bad, "the 1ms timer made in init has not fired")
	}
	fired := make(chan struct{})
	time.AfterFunc(time.Millisecond, func() { close(fired) })
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		bad = append(bad, "a 1ms AfterFunc did not fire within 10s")
	}
	if y := time.Now().Year(); y < 2025 {
		bad = append(bad, "wall clock year "+strconv.Itoa(y))
	}
	if len(bad) > 0 {
		return "clock broken: " + strings.Join(bad, ", ")
	}
	return "clock ok, init wall clock year " + strconv.Itoa(initTime.Year())
}
