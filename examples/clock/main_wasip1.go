//go:build wasip1

package main

import (
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

// period is the tick period as a duration string. A module cannot take
// flags, so a build may set it with -ldflags=-X main.period=200ms (the
// tests do, to tick fast); empty means DefaultPeriod.
var period string

// init registers the service: a module's _initialize runs init functions,
// never main (see package guest).
func init() {
	d := DefaultPeriod
	if period != "" {
		var err error
		if d, err = time.ParseDuration(period); err != nil || d <= 0 {
			panic("clock: main.period is " + period + "; set a positive duration such as 4s with -ldflags=-X main.period=4s")
		}
	}
	guest.Register(stateroom.New(func(string) *Clock { return &Clock{Period: d} }))
}

func main() {}
