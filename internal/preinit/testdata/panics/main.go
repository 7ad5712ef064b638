// Command panics panics in an init function, as a service with a bug at
// start-up does.
package main

import (
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

type svc struct{ stateroom.BaseService }

func init() {
	guest.Register(stateroom.New(func(string) *svc { return &svc{} }))
	loadConfig()
}

func loadConfig() { panic("preinit-test: config missing in init") }

func main() {}
