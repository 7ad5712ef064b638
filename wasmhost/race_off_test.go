//go:build !race

package wasmhost_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
