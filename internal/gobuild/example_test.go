package gobuild_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stateroom-go/stateroom/internal/gobuild"
)

// Build compiles a service's package main to a module that any Stateroom
// host loads.
func ExampleBuild() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	err = gobuild.Build(context.Background(), gobuild.Options{
		Dir:        "../../guest/testdata/probe",
		Output:     filepath.Join(dir, "probe.wasm"),
		StripDebug: true,
		Stderr:     os.Stderr, // compiler errors as the compiler printed them
	})
	fmt.Println("build error:", err)
	// Output: build error: <nil>
}
