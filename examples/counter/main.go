//go:build !wasip1

package main

import (
	"embed"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/examples/internal/exampleserver"
	"github.com/stateroom-go/stateroom/server"
)

// static is the browser demo, the same page `stateroom dev` serves from
// static/: the native build carries it inside the binary, so
// `go run ./examples/counter` works from any directory.
//
//go:embed static
var static embed.FS

func main() {
	exampleserver.Main("shared counter", stateroom.New(NewCounter), server.Options{StaticFS: exampleserver.Static(static)})
}
