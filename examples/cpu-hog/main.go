//go:build !wasip1

package main

import (
	"embed"
	"flag"
	"fmt"
	"time"

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
	spin := DefaultSpin
	flag.Func("spin", "how long each connection spins the CPU (default "+DefaultSpin.String()+")", func(s string) error {
		d, err := time.ParseDuration(s)
		if err == nil && d < 0 {
			err = fmt.Errorf("%v is negative; give a duration of 0 or more, e.g. 10s", d)
		}
		spin = d
		return err
	})
	factory := stateroom.New(func(string) *CPUHog { return &CPUHog{Spin: spin} })
	exampleserver.Main("cpu hog", factory, server.Options{StaticFS: exampleserver.Static(static)})
}
