//go:build !wasip1

package main

import (
	"embed"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/examples/internal/exampleserver"
	"github.com/stateroom-go/stateroom/server"
)

// static is the example's page, the one `stateroom dev` serves from
// static/: the native build carries it.
//
//go:embed static
var static embed.FS

func main() {
	exampleserver.Main("binary echo server", stateroom.New(NewBinaryEcho), server.Options{StaticFS: exampleserver.Static(static)})
}
