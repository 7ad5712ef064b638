package guest_test

import (
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/guest"
)

// Counter is a service; the same type runs natively and as a module.
type Counter struct {
	stateroom.BaseService
}

// NewCounter builds the service of one room.
func NewCounter(roomID string) *Counter { return &Counter{} }

// Register is the whole wasm entry point of a service. In a real module it
// sits in main_wasip1.go (//go:build wasip1) of package main, as
//
//	func init() { guest.Register(stateroom.New(NewCounter)) }
//
//	func main() {}
//
// and `stateroom build` (internal/gobuild) makes the module. Outside
// wasip1, as here, Register only records the factory.
func ExampleRegister() {
	guest.Register(stateroom.New(NewCounter))
	// Output:
}
