// Package profile gives the bench servers a --cpuprofile flag's worth of
// code, shared so both servers profile the same way.
package profile

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// StartCPU starts a CPU profile written to path and returns the function
// that stops it and closes the file. An empty path profiles nothing and
// returns a no-op stop. The server must stop it before exiting (on SIGTERM,
// through its graceful shutdown), or the profile is empty.
func StartCPU(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w; give a path in a writable directory", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
