package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat. Linux fixes
// USER_HZ at 100 in its user-space ABI on every architecture Go supports, so
// it is a constant rather than a sysconf(_SC_CLK_TCK) call (which would need
// cgo).
const clockTick = 10 * time.Millisecond

// errProc says a /proc file did not have the expected shape.
var errProc = errors.New("loadgen: unexpected /proc format")

// cpuTime is a process's CPU time, split as /proc/PID/stat splits it:
// user is time running the program, sys time in the kernel on its behalf
// (system calls, and on loopback much of the TCP work of both ends).
type cpuTime struct{ user, sys time.Duration }

// total returns user + sys.
func (c cpuTime) total() time.Duration { return c.user + c.sys }

// processCPU returns the CPU time process pid has used.
func processCPU(pid int) (cpuTime, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuTime{}, fmt.Errorf("loadgen: reading the server's CPU time: %w (is --server-pid the server's process id, on this machine?)", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime and stime from the contents of
// /proc/PID/stat. The second field (the command name, in parentheses) may
// hold spaces and parentheses itself, so fields are counted from the last
// ')'.
func parseStatCPU(b []byte) (cpuTime, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return cpuTime{}, fmt.Errorf("%w: /proc/PID/stat has no \")\" after the command name", errProc)
	}
	// After ")" come fields 3 (state) onward; utime and stime are fields
	// 14 and 15, so the 12th and 13th here.
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 13 {
		return cpuTime{}, fmt.Errorf("%w: /proc/PID/stat has %d fields after the command name, want at least 13", errProc, len(fields))
	}
	var ticks [2]uint64
	for i, f := range fields[11:13] {
		n, err := strconv.ParseUint(string(f), 10, 63)
		if err != nil {
			return cpuTime{}, fmt.Errorf("%w: /proc/PID/stat utime/stime %q is not a number", errProc, f)
		}
		// Each below 2^61 ticks, so their sum in nanoseconds fits too.
		if n > uint64(1<<61/clockTick) {
			return cpuTime{}, fmt.Errorf("%w: /proc/PID/stat CPU time %d ticks is out of range", errProc, n)
		}
		ticks[i] = n
	}
	return cpuTime{user: time.Duration(ticks[0]) * clockTick, sys: time.Duration(ticks[1]) * clockTick}, nil
}

// processRSS returns the resident set size of process pid in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("loadgen: reading the server's memory: %w (is --server-pid the server's process id, on this machine?)", err)
	}
	return parseStatusRSS(b)
}

// parseStatusRSS extracts VmRSS (bytes) from the contents of
// /proc/PID/status, where it reads "VmRSS:  12345 kB".
func parseStatusRSS(b []byte) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%w: VmRSS line %q is not \"VmRSS: N kB\"", errProc, line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<53 {
			return 0, fmt.Errorf("%w: VmRSS %q is not a size in kB", errProc, f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("%w: /proc/PID/status has no VmRSS line (a kernel thread or a zombie?)", errProc)
}
