package wasmpatch_test

import (
	"fmt"
	"os"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// Patch a module built with `go build -buildmode=c-shared` from a package
// that uses package guest (here a small stand-in from testdata).
func ExamplePatch() {
	module, err := os.ReadFile("testdata/reactor.wasm")
	if err != nil {
		panic(err)
	}
	patched, res, err := wasmpatch.Patch(module)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("STATEROOM_API_VERSION -> %d, STATEROOM_API_PROTOCOL -> %d\n", res.VersionAddr, res.ProtocolAddr)
	fmt.Printf("start function %d, data segments %d -> %d\n", res.StartFunc, res.DataSegments, res.MergedSegments)
	fmt.Println(len(patched) > len(module))
	// Output:
	// STATEROOM_API_VERSION -> 1040, STATEROOM_API_PROTOCOL -> 1044
	// start function 0, data segments 3 -> 3
	// true
}
