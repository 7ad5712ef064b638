//go:build linux

// Package netns_test runs a three-node Stateroom cluster as real
// `stateroom serve` processes, each in a network namespace of its own,
// joined by a bridge in a "switch" namespace, and cuts nodes off the way a
// network does: by taking a node's link down in the switch (a partition)
// or by SIGKILL (a crash). Clients reach the nodes from a client namespace
// through the switch, or over a node's own loopback, which a cut leaves
// working, so a test can watch a cut-off node fence itself.
//
// The tests need root (CAP_NET_ADMIN, to create namespaces) and the ip
// command (iproute2): CI runs as root and installs iproute2 (.ci/run).
// They skip, saying so, when not root. Nothing is added to the host's
// namespace but sockets on its loopback; every namespace a test creates
// is deleted when it ends, failed or not.
//
// The default runs fit CI; the long forms are
//
//	go test ./test/netns -run TestPartitionNeverTwoOwners -netns-runs 20 -timeout 60m
//	go test ./test/netns -run TestFailoverSeries -failover-runs 10 -netns-ttl 15s -timeout 30m
package netns_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom/internal/gobuild"
)

var (
	partitionRuns = flag.Int("netns-runs", 2, "how many times TestPartitionNeverTwoOwners cuts a node off (the issue's long form: 20)")
	failoverRuns  = flag.Int("failover-runs", 2, "how many times TestFailoverSeries kills a room's owner (the issue's long form: 10)")
	netnsTTL      = flag.Duration("netns-ttl", defaultTTL, "the nodes' --lease-ttl (stateroom serve's default: 15s)")
)

// The test binary builds the stateroom command and the counter example
// once; every node runs them.
var (
	stateroomBin string // the stateroom command under test
	counterWasm  string // examples/counter built to WebAssembly
	cacheDir     string // wazero's compilation cache, shared by the nodes
)

func TestMain(m *testing.M) {
	flag.Parse()
	work, err := os.MkdirTemp("", "stateroom-netns-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Only root can create namespaces: the tests skip then, and need
	// nothing built.
	if os.Geteuid() == 0 {
		if err := build(work); err != nil {
			fmt.Fprintln(os.Stderr, "setup:", err)
			os.RemoveAll(work)
			os.Exit(1)
		}
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(work)
		os.Exit(code)
	}))
}

// build writes the stateroom binary and the counter module into work.
func build(work string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stateroomBin = filepath.Join(work, "stateroom")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", stateroomBin, "./cmd/stateroom")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of the stateroom command: %v\n%s", err, out)
	}
	counterWasm = filepath.Join(work, "counter.wasm")
	if err := gobuild.Build(ctx, gobuild.Options{Dir: filepath.Join(root, "examples", "counter"), Output: counterWasm}); err != nil {
		return fmt.Errorf("building examples/counter to WebAssembly: %w", err)
	}
	cacheDir = filepath.Join(work, "wazero-cache")
	return nil
}

// needRoot skips a test when the process cannot create network namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to create network namespaces; CI runs it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the ip command (iproute2) is missing: install it (apt-get install iproute2); .ci/run does")
	}
}
