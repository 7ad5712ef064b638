//go:build linux

package netns_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ipTimeout bounds one ip command; waitTimeout bounds every wait for a
// condition, which is polled. Both are failure bounds only.
const (
	ipTimeout   = 30 * time.Second
	waitTimeout = 2 * time.Minute
	pollEvery   = 50 * time.Millisecond
)

// ip runs the ip command and fails the test on an error.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if err := ipErr(args...); err != nil {
		t.Fatal(err)
	}
}

func ipErr(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// The test network: 10.77.0.0/24 on a bridge in the switch namespace. The
// addresses exist only in the test's namespaces.
const (
	subnet   = "10.77.0."
	httpPort = "8080"
	natsPort = "6222"
	clientIP = subnet + "100"
)

// network is one test's namespaces: a switch, one per node, one for the
// clients. Names are unique per run, so tests and test binaries never meet.
type network struct {
	prefix string
	sw     string // the switch namespace
	client string // the clients' namespace
}

// newNetwork creates the switch and client namespaces; the test's cleanup
// deletes them and every namespace added later.
func newNetwork(t *testing.T) *network {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	nw := &network{prefix: "srnt-" + hex.EncodeToString(b)}
	nw.sw = nw.add(t, "sw")
	ip(t, "-n", nw.sw, "link", "set", "lo", "up")
	ip(t, "-n", nw.sw, "link", "add", "br0", "type", "bridge")
	ip(t, "-n", nw.sw, "link", "set", "br0", "up")
	nw.client = nw.add(t, "cl")
	nw.plug(t, nw.client, "cl", clientIP)
	return nw
}

// add creates namespace prefix-name and registers its deletion (which
// takes its end of every veth pair with it).
func (nw *network) add(t *testing.T, name string) string {
	t.Helper()
	ns := nw.prefix + "-" + name
	ip(t, "netns", "add", ns)
	t.Cleanup(func() {
		if err := ipErr("netns", "del", ns); err != nil {
			t.Errorf("deleting the test's namespace: %v", err)
		}
	})
	return ns
}

// plug joins ns to the switch by a veth pair: eth0 with addr in ns, and
// "v"+port on the bridge, the end a cut takes down.
func (nw *network) plug(t *testing.T, ns, port, addr string) {
	t.Helper()
	sw, peer := "v"+port, "p"+port
	ip(t, "-n", nw.sw, "link", "add", sw, "type", "veth", "peer", "name", peer)
	ip(t, "-n", nw.sw, "link", "set", peer, "netns", ns)
	ip(t, "-n", ns, "link", "set", peer, "name", "eth0")
	ip(t, "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	ip(t, "-n", ns, "link", "set", "eth0", "up")
	ip(t, "-n", ns, "link", "set", "lo", "up")
	ip(t, "-n", nw.sw, "link", "set", sw, "master", "br0")
	ip(t, "-n", nw.sw, "link", "set", sw, "up")
}

// setLink takes a node's port on the switch down (a partition) or up.
func (nw *network) setLink(t *testing.T, port string, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	ip(t, "-n", nw.sw, "link", "set", "v"+port, state)
}

// dialIn dials addr from inside namespace ns: a goroutine locked to its
// thread moves the thread into ns and creates the socket there. The
// thread is never moved back: the goroutine ends locked, so the runtime
// ends the thread. The connection works from any goroutine.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			done <- result{nil, err}
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			done <- result{nil, fmt.Errorf("setns into %s: %w", ns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// forwarder listens on the host's loopback and joins each connection to
// one dialled to target inside a namespace: the way clients that dial by
// URL (package client) reach a node.
type forwarder struct {
	ln    net.Listener
	ns    string
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// forward starts a forwarder to target in ns; the test's cleanup stops it
// and closes its connections.
func forward(t *testing.T, ns, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, ns: ns, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept(target)
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.conns = nil // connections accepted from now on are closed
		f.mu.Unlock()
		f.wg.Wait()
	})
	return ln.Addr().String()
}

func (f *forwarder) accept(target string) {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.pipe(c, target)
		}()
	}
}

// track records c for the cleanup; false when the forwarder is closed.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *forwarder) pipe(c net.Conn, target string) {
	if !f.track(c) {
		c.Close()
		return
	}
	defer f.untrack(c)
	up, err := dialIn(f.ns, target, 5*time.Second)
	if err != nil {
		return // the client sees the connection close, as a refused dial
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.Close() // unblocks the copy below
		close(done)
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}

// node is one `stateroom serve --node` process in its namespace.
type node struct {
	name string // n1, n2, ...
	ns   string
	ip   string
	// local is a loopback address forwarded to the node's HTTP port over
	// the node's own loopback: it works while the node is cut off.
	// remote goes through the client namespace and the switch.
	local, remote string
	args          []string
	log           string // the node's log file (every start appends)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// testCluster is a test's network and nodes.
type testCluster struct {
	t     *testing.T
	nw    *network
	nodes []*node
	ttl   time.Duration
	http  *http.Client
}

// adminToken turns on the nodes' admin API (/admin/rooms, /admin/state).
const adminToken = "netns-test-admin-token-0123456789"

// checkpointInterval is the nodes' --checkpoint-interval: rooms are saved
// soon after each event, so a test waits little for "saved".
const checkpointInterval = 100 * time.Millisecond

// startCluster creates the namespaces and starts n nodes with lease TTL
// ttl, and waits until each says it is in the cluster.
func startCluster(t *testing.T, n int, ttl time.Duration) *testCluster {
	t.Helper()
	needRoot(t)
	c := &testCluster{t: t, nw: newNetwork(t), ttl: ttl}
	// Every request is a new connection: no idle connection (nor its
	// goroutines) outlives a test, and none is stuck to a node cut off.
	c.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	logs := t.TempDir()
	var routes []string
	for i := range n {
		routes = append(routes, subnet+strconv.Itoa(i+1)+":"+natsPort)
	}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		nd := &node{name: name, ns: c.nw.add(t, name), ip: subnet + strconv.Itoa(i+1), log: filepath.Join(logs, name+".log")}
		c.nw.plug(t, nd.ns, name, nd.ip)
		nd.local = forward(t, nd.ns, "127.0.0.1:"+httpPort)
		nd.remote = forward(t, c.nw.client, nd.ip+":"+httpPort)
		nd.args = []string{"netns", "exec", nd.ns, stateroomBin, "serve", counterWasm,
			"--host", "0.0.0.0", "-p", httpPort, "--cache-dir", cacheDir, "--state-dir", t.TempDir(),
			"--checkpoint-interval", checkpointInterval.String(), "--log-format", "json", "--log-level", "debug",
			"--node", name, "--cluster-listen", routes[i], "--lease-ttl", ttl.String()}
		for j, r := range routes {
			if j != i {
				nd.args = append(nd.args, "--cluster-peer", r)
			}
		}
		c.nodes = append(c.nodes, nd)
	}
	// Registered after the namespaces' deletion, so it runs before it.
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("log of node %s (%s), but for debug lines and refused requests:\n%s", nd.name, nd.log, tail(nd.readable(), 300))
			}
		}
	})
	for _, nd := range c.nodes {
		c.start(nd)
	}
	for _, nd := range c.nodes {
		c.waitInCluster(nd)
	}
	return c
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines ...]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// start runs the node's process (again, after a kill); its output is
// appended to its log file.
func (c *testCluster) start(nd *node) {
	c.t.Helper()
	f, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command("ip", nd.args...)
	cmd.Env = append(os.Environ(), "STATEROOM_ADMIN_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	nd.mu.Unlock()
}

// kill sends SIGKILL (`ip netns exec` execs the command: the process is
// stateroom itself) and waits for the exit.
func (nd *node) kill() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// status is GET /status of a node over its own loopback.
type status struct {
	code      int
	InCluster bool   `json:"in_cluster"`
	Fenced    bool   `json:"fenced"`
	Error     string `json:"error"`
}

func (c *testCluster) status(nd *node) (status, error) {
	var st status
	resp, err := c.http.Get("http://" + nd.local + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	st.code = resp.StatusCode
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitInCluster waits until the node answers /status 200 in the cluster.
func (c *testCluster) waitInCluster(nd *node) {
	c.t.Helper()
	var st status
	var err error
	c.waitFor(fmt.Sprintf("node %s in the cluster (/status 200)", nd.name), func() bool {
		st, err = c.status(nd)
		return err == nil && st.code == http.StatusOK && st.InCluster
	}, func() string { return fmt.Sprintf("last /status: %+v, %v", st, err) })
}

// waitFor polls cond until it holds, failing the test after waitTimeout
// with what and detail().
func (c *testCluster) waitFor(what string, cond func() bool, detail func() string) {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s within %v; %s", what, waitTimeout, detail())
		}
		time.Sleep(pollEvery)
	}
}

// adminGet decodes GET path of the node's admin API into v.
func (c *testCluster) adminGet(nd *node, path string, v any) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+nd.local+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s on %s: %s: %s", path, nd.name, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// runs reports whether the node runs the room: only its owner does (a
// gateway forwards the room's clients, it runs no instance).
func (c *testCluster) runs(nd *node, room string) (bool, error) {
	var rooms []struct {
		ID string `json:"id"`
	}
	if err := c.adminGet(nd, "/admin/rooms", &rooms); err != nil {
		return false, err
	}
	for _, r := range rooms {
		if r.ID == room {
			return true, nil
		}
	}
	return false, nil
}

// saved is a room's record in the cluster's store, read through a node.
type saved struct {
	Revision uint64    `json:"revision"`
	Saved    time.Time `json:"saved"`
}

func (c *testCluster) saved(nd *node, room string) (saved, error) {
	var all []struct {
		ID string `json:"id"`
		saved
	}
	if err := c.adminGet(nd, "/admin/state", &all); err != nil {
		return saved{}, err
	}
	for _, r := range all {
		if r.ID == room {
			return r.saved, nil
		}
	}
	return saved{}, fmt.Errorf("room %s has no saved state", room)
}

// saveQuiet is how long a room's record must stay put for waitSaved: 20
// checkpoint intervals, room for a slow write to the replicated store on
// a busy machine.
const saveQuiet = 20 * checkpointInterval

// waitSaved waits until the room's last event is in the store: its record
// was saved after since (when a client had seen the event's result), and
// no save followed for saveQuiet. A snapshot taken before the event and
// saved after since is followed by another save (the event made the room
// dirty), so a record that stays put holds the event.
func (c *testCluster) waitSaved(via *node, room string, since time.Time) saved {
	c.t.Helper()
	var last saved
	var err error
	var stableFrom time.Time
	c.waitFor("save of room "+room, func() bool {
		var s saved
		if s, err = c.saved(via, room); err != nil {
			return false
		}
		if s != last {
			last, stableFrom = s, time.Now()
			return false
		}
		return last.Saved.After(since) && time.Since(stableFrom) > saveQuiet
	}, func() string { return fmt.Sprintf("last record %+v (%v)", last, err) })
	return last
}

// logEvent is one line of a node's JSON log.
type logEvent struct {
	Time        time.Time `json:"time"`
	Level       string    `json:"level"`
	Msg         string    `json:"msg"`
	Room        string    `json:"room"`
	Gone        string    `json:"gone"`
	Incarnation string    `json:"incarnation"`
}

// events returns the node's log lines whose message contains msg, from
// every process the node ran.
func (nd *node) events(t *testing.T, msg string) []logEvent {
	t.Helper()
	var out []logEvent
	nd.scanLog(t, func(e logEvent, _ string) {
		if strings.Contains(e.Msg, msg) {
			out = append(out, e)
		}
	})
	return out
}

// worthShowing reports whether a log line helps a reader of a failure:
// not refused WebSocket requests (clients retrying), nor debug lines but
// room starts.
func worthShowing(e logEvent) bool {
	return e.Msg != msgRefused && (e.Level != "DEBUG" || e.Msg == msgCreated)
}

// readable returns the node's whole log (every process it ran) as
// worthShowing keeps it, lines that are not JSON included.
func (nd *node) readable() string {
	b, err := os.ReadFile(nd.log)
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if e, ok := parseLine(line); !ok || worthShowing(e) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// explain returns the node's log lines logged from from to to that
// worthShowing keeps, and counts refused requests: what a test shows to
// explain a slow run.
func (nd *node) explain(t *testing.T, from, to time.Time) string {
	t.Helper()
	var out []string
	refused := 0
	nd.scanLog(t, func(e logEvent, line string) {
		switch {
		case e.Time.Before(from) || e.Time.After(to):
		case e.Msg == msgRefused:
			refused++
		case worthShowing(e):
			out = append(out, line)
		}
	})
	return fmt.Sprintf("%s\n(and %d refused WebSocket requests)", strings.Join(out, "\n"), refused)
}

// roomLog returns the node's log lines about room.
func (nd *node) roomLog(t *testing.T, room string) string {
	t.Helper()
	var out []string
	nd.scanLog(t, func(e logEvent, line string) {
		if e.Room == room && worthShowing(e) {
			out = append(out, line)
		}
	})
	return strings.Join(out, "\n")
}

// parseLine decodes one JSON log line. A refused WebSocket request's
// line has two "msg" keys (the message and the refusal's text, which
// json keeps): it is recognised by its message.
func parseLine(line string) (logEvent, bool) {
	var e logEvent
	if json.Unmarshal([]byte(line), &e) != nil {
		return e, false
	}
	if strings.Contains(line, `"msg":"`+msgRefused+`"`) {
		e.Msg = msgRefused
	}
	return e, true
}

// scanLog calls f with each JSON line of the node's log.
func (nd *node) scanLog(t *testing.T, f func(e logEvent, line string)) {
	t.Helper()
	file, err := os.Open(nd.log)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if e, ok := parseLine(sc.Text()); ok {
			f(e, sc.Text())
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}

// The log messages the tests look for (package cluster's).
const (
	msgFenced   = "stopped serving this node's rooms"
	msgTakeover = "took over a room whose node left the cluster"
	// msgCreated (debug) is logged when a node starts running a room,
	// after it owns the room: whether it took the room over or claimed it
	// afresh (after a release), this is when it became an owner.
	msgCreated    = "room created"
	msgLeft       = "a node left the cluster"
	msgLostLease  = "a room's node lost its lease"
	msgReregister = "it registered again"
	msgRefused    = "WebSocket request refused"
)
