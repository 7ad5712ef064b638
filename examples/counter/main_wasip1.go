//go:build wasip1

package main

import (
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

// init registers the service: a module's _initialize runs init functions,
// never main (see package guest).
func init() { guest.Register(stateroom.New(NewCounter)) }

func main() {}
