package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// Three `stateroom serve` processes form a cluster on loopback: a room
// reached through every node is one room, and /status says each node is in
// the cluster.
func TestServeCluster(t *testing.T) {
	dist := filepath.Join(builtScaffold(t), "dist")
	var addrs []string
	var ls []net.Listener
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls, addrs = append(ls, l), append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	var procs []*proc
	for i := range 3 {
		args := []string{"serve", dist, "-p", "0", "--cache-dir", cacheDir,
			"--state-dir", t.TempDir(), "--node", "n" + string(rune('1'+i)), "--cluster-listen", addrs[i]}
		for j, a := range addrs {
			if j != i {
				args = append(args, "--cluster-peer", a)
			}
		}
		procs = append(procs, start(t, t.TempDir(), args...))
	}
	var ws []string
	for i, p := range procs {
		httpURL, wsURL := p.ready(t)
		ws = append(ws, wsURL)
		code, body := get(t, httpURL+"/status")
		var st struct {
			Node      string `json:"node"`
			InCluster bool   `json:"in_cluster"`
		}
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || !st.InCluster || st.Node != "n"+string(rune('1'+i)) {
			t.Fatalf("node %d /status: %d %q (%v)", i+1, code, body, err)
		}
		if out := p.out.String(); !strings.Contains(out, "of a cluster with 2 peers") {
			t.Errorf("node %d's ready line does not say it is in a cluster:\n%s", i+1, out)
		}
	}
	var cs []*roomClient
	for _, u := range ws {
		c := dial(t, u, "shared")
		c.expect("new value: 0")
		cs = append(cs, c)
	}
	cs[1].send("increment")
	for _, c := range cs {
		c.expect("new value: 1")
	}
	cs[2].send("increment")
	for _, c := range cs {
		c.expect("new value: 2")
	}
	for _, p := range procs {
		if err := p.interrupt(t); err != nil {
			t.Errorf("exit after SIGINT: %v\n%s", err, p.out.String())
		}
	}
}
