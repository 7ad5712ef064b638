//go:build !unix

package loadgen

import "time"

// selfCPU returns 0: without getrusage the tool cannot measure its own CPU
// time, and its report shows none. The server's figures need /proc, that
// is Linux, anyway.
func selfCPU() time.Duration { return 0 }
