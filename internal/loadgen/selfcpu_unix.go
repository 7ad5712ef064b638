//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// selfCPU returns the CPU time (user + system) this process has used, or 0
// when the system will not say.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
