// Command clock broadcasts a tick to every client of a room every four
// seconds, driven by the room's timer.
package main

import (
	"strconv"
	"time"

	"github.com/stateroom-go/stateroom"
)

// DefaultPeriod is the clock's tick period, as in upstream's clock example.
const DefaultPeriod = 4 * time.Second

// Clock is the clock service: from Init on, every Period it broadcasts
// "Timer @ N", N counting from 0.
type Clock struct {
	stateroom.BaseService
	// Period is the time between ticks.
	Period time.Duration
	ticks  int
}

// NewClock returns the service of one room, ticking every DefaultPeriod.
func NewClock(roomID string) *Clock { return &Clock{Period: DefaultPeriod} }

// Init starts the timer.
func (c *Clock) Init(room stateroom.Room, _ stateroom.InitEvent) { room.SetTimer(c.Period) }

// Timer broadcasts the tick and sets the timer again.
func (c *Clock) Timer(room stateroom.Room, _ stateroom.TimerEvent) {
	room.Send(stateroom.Everyone, stateroom.Text("Timer @ "+strconv.Itoa(c.ticks)))
	c.ticks++
	room.SetTimer(c.Period)
}
