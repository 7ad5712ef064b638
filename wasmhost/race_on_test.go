//go:build race

package wasmhost_test

// raceEnabled: the race detector's shadow memory and bookkeeping grow with
// the Go heap and are never handed back, so the process's RSS cannot
// return to its start under -race whatever the host does.
const raceEnabled = true
