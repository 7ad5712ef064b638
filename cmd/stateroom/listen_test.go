package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestListenErrors checks the advice for each way listening fails. A port
// in use is taken for real; the others cannot be set up in a test (root
// may bind any port, and which addresses a machine has varies), so they are
// built as server.Listen returns them: a *net.OpError, wrapped.
func TestListenErrors(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().(*net.TCPAddr).Port
	_, inUse := listen("127.0.0.1", busy)

	wrapped := func(addr string, cause error) error {
		return fmt.Errorf("server: cannot listen on %s: %w", addr, &net.OpError{Op: "listen", Net: "tcp", Err: cause})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"in use", inUse,
			fmt.Sprintf("port %d on 127.0.0.1 is in use (another stateroom?); stop that program or choose another port with -p, e.g. -p %d", busy, busy+1)},
		{"in use, last port", listenError("127.0.0.1", 65535, wrapped("127.0.0.1:65535", os.NewSyscallError("bind", syscall.EADDRINUSE))),
			"port 65535 on 127.0.0.1 is in use (another stateroom?); stop that program or choose another port with -p, e.g. -p 8080"},
		{"privileged", listenError("0.0.0.0", 80, wrapped("0.0.0.0:80", os.NewSyscallError("bind", syscall.EACCES))),
			"not allowed to listen on 0.0.0.0:80 (ports below 1024 need privileges); choose another port with -p, e.g. -p 8080"},
		{"not this machine", listenError("192.0.2.1", 8080, wrapped("192.0.2.1:8080", os.NewSyscallError("bind", syscall.EADDRNOTAVAIL))),
			"cannot listen on 192.0.2.1:8080: --host 192.0.2.1 is not an address of this machine; use 127.0.0.1, or 0.0.0.0 for every address"},
		{"unknown host", listenError("nohost.invalid", 8080, wrapped("nohost.invalid:8080", &net.DNSError{Err: "no such host", Name: "nohost.invalid", IsNotFound: true})),
			"cannot listen on nohost.invalid:8080: lookup nohost.invalid: no such host; check --host and -p"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.name, tc.err, tc.want)
		}
	}
	// The cause stays inspectable under the advice.
	dns := listenError("h", 1, wrapped("h:1", &net.DNSError{Err: "no such host", Name: "h"}))
	var de *net.DNSError
	if !errors.As(dns, &de) || strings.Count(dns.Error(), "cannot listen") != 1 {
		t.Errorf("unknown host: %v does not wrap the *net.DNSError once", dns)
	}
}
