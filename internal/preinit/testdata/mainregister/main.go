// Command mainregister registers its service in main, which a WebAssembly
// reactor never runs.
package main

import (
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

type svc struct{ stateroom.BaseService }

func main() { guest.Register(stateroom.New(func(string) *svc { return &svc{} })) }
