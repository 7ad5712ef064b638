package loadgen

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds ") (" and spaces: fields count from the last ")".
	stat := "1234 (my ) (srv 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 2000000 500 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if want := (cpuTime{user: 250 * clockTick, sys: 75 * clockTick}); err != nil || got != want {
		t.Errorf("parseStatCPU = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 12 13"} {
		if _, err := parseStatCPU([]byte(bad)); !errors.Is(err, errProc) {
			t.Errorf("parseStatCPU(%q) error %v, want errProc", bad, err)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tsrv\nVmPeak:\t  999 kB\nVmRSS:\t   2048 kB\nThreads: 4\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil || got != 2048*1024 {
		t.Errorf("parseStatusRSS = %d, %v; want %d", got, err, 2048*1024)
	}
	for _, bad := range []string{"", "Name: x\n", "VmRSS: 12 MB\n", "VmRSS: -1 kB\n", "VmRSS: x kB\n"} {
		if _, err := parseStatusRSS([]byte(bad)); !errors.Is(err, errProc) {
			t.Errorf("parseStatusRSS(%q) error %v, want errProc", bad, err)
		}
	}
}

// TestProcSelf reads this very process through /proc: the parsers must
// accept what the kernel writes.
func TestProcSelf(t *testing.T) {
	rss, err := processRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("processRSS(self) = %d, %v", rss, err)
	}
	// Burn CPU in user space until /proc shows it as user time, to prove
	// the fields are the right ones (a wrong field would stay put).
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		now, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now.user > before.user {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processCPU(self) stayed at %v while burning CPU (x=%d)", now, x)
		}
	}
	if selfCPU() <= 0 {
		t.Errorf("selfCPU = %v, want > 0", selfCPU())
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("processCPU(-1) succeeded; want an error naming --server-pid")
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1 (x) S 1 1 1 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 1 1"))
	f.Add([]byte("1 (a) b) R 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 1 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseStatCPU(b)
		if err != nil && !errors.Is(err, errProc) {
			t.Fatalf("error %v does not wrap errProc", err)
		}
		if d.user < 0 || d.sys < 0 || d.total() < 0 {
			t.Fatalf("negative CPU time %v from %q", d, b)
		}
	})
}

func FuzzParseStatusRSS(f *testing.F) {
	f.Add([]byte("Name:\tx\nVmRSS:\t 100 kB\n"))
	f.Add([]byte("VmRSS: 9007199254740993 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseStatusRSS(b)
		if err != nil && !errors.Is(err, errProc) {
			t.Fatalf("error %v does not wrap errProc", err)
		}
		if n < 0 {
			t.Fatalf("negative RSS %d from %q", n, b)
		}
	})
}
