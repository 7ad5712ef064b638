//go:build !wasip1

package main

import (
	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/examples/internal/exampleserver"
	"github.com/stateroom-go/stateroom/server"
)

func main() { exampleserver.Main("shared counter", stateroom.New(NewCounter), server.Options{}) }
