// Command loops never finishes its start-up.
package main

import (
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

type svc struct{ stateroom.BaseService }

var spins int

func init() {
	guest.Register(stateroom.New(func(string) *svc { return &svc{} }))
	for {
		spins++
	}
}

func main() {}
