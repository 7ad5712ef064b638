package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
)

// counterExample writes the counter example, built to WebAssembly, to a
// new directory's server.wasm and returns the directory.
func counterExample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mod := gobuildtest.Module(t, filepath.Join(frameRoot, "examples", "counter"), "")
	if err := os.WriteFile(filepath.Join(dir, "server.wasm"), mod, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestServeKeepsState serves the counter example with the default state
// file, .stateroom/rooms.db in the working directory. After SIGTERM the
// next process restores every room as it was. After SIGKILL it restores
// the last checkpoint: the test waits until the store holds a save newer
// than the one restored (a checkpoint comes at most --checkpoint-interval
// after an event), kills, and finds the value of that save.
func TestServeKeepsState(t *testing.T) {
	const adminToken = "admin-secret-0123456789"
	mod := counterExample(t)
	work := t.TempDir()
	serve := func() (*proc, string, string) {
		t.Helper()
		p := startDefault(t, work, []string{envAdminToken + "=" + adminToken},
			"serve", mod, "-p", "0", "--cache-dir", cacheDir, "--checkpoint-interval", "200ms")
		httpURL, wsURL := p.ready(t)
		p.waitFor(t, regexp.MustCompile(`rooms saved to \.stateroom/rooms\.db`), 0, time.Second)
		return p, httpURL, wsURL
	}

	p, _, wsURL := serve()
	if _, err := os.Stat(filepath.Join(work, ".stateroom", "rooms.db")); err != nil {
		t.Fatalf("no state file in the working directory: %v", err)
	}
	a := dial(t, wsURL, "r")
	a.expect("new value: 0")
	a.expect("clients: 1") // the counter example says who is here
	for i := 1; i <= 3; i++ {
		a.send("increment")
		a.expect("new value: " + strconv.Itoa(i))
	}
	other := dial(t, wsURL, "other")
	other.expect("new value: 0")
	other.expect("clients: 1")
	other.send("decrement")
	other.expect("new value: -1")
	aClosed, otherClosed := a.closed(), other.closed()
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	aClosed(stateroom.CloseGoingAway)
	otherClosed(stateroom.CloseGoingAway)

	p, httpURL, wsURL := serve()
	b := dial(t, wsURL, "r")
	b.expect("new value: 3")
	b.expect("clients: 1")
	other = dial(t, wsURL, "other")
	other.expect("new value: -1")
	other.expect("clients: 1")

	// The record restored, then an event: its checkpoint is a newer one.
	restored := savedRevision(t, httpURL, adminToken, "r")
	b.send("increment")
	b.expect("new value: 4")
	deadline := time.Now().Add(30 * time.Second)
	for savedRevision(t, httpURL, adminToken, "r") <= restored {
		if time.Now().After(deadline) {
			t.Fatalf("room r was not checkpointed within 30s of its event (revision still %d)", restored)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("stateroom exited 0 after SIGKILL")
	}

	_, _, wsURL = serve()
	c := dial(t, wsURL, "r")
	c.expect("new value: 4")
	c.expect("clients: 1")
}

// savedRevision returns the revision of room's record in the server's
// store, from the admin API (GET /admin/state), or 0 if there is none.
func savedRevision(t *testing.T, httpURL, token, room string) uint64 {
	t.Helper()
	code, body := getWith(t, http.DefaultClient, httpURL+"/admin/state", token)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/state: %d %q", code, body)
	}
	var saved []struct {
		ID       string `json:"id"`
		Revision uint64 `json:"revision"`
	}
	if err := json.Unmarshal([]byte(body), &saved); err != nil {
		t.Fatalf("GET /admin/state: %v in %q", err, body)
	}
	for _, s := range saved {
		if s.ID == room {
			return s.Revision
		}
	}
	return 0
}

// TestStateFlags: --state-dir moves the state file (and is shown on the
// ready line); a second process on the same file fails before its ready
// line with the store's advice; --no-state keeps nothing.
func TestStateFlags(t *testing.T) {
	mod := counterExample(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	work := t.TempDir()
	p := startDefault(t, work, nil, "serve", mod, "-p", "0", "--cache-dir", cacheDir, "--state-dir", stateDir)
	p.ready(t)
	if !strings.Contains(p.out.String(), "rooms saved to "+filepath.Join(stateDir, "rooms.db")) {
		t.Errorf("the ready line does not name the state file in %s:\n%s", stateDir, p.out.String())
	}
	if _, err := os.Stat(filepath.Join(work, ".stateroom")); err == nil {
		t.Error("--state-dir elsewhere, yet .stateroom was created in the working directory")
	}

	// The same file again: locked.
	_, stderr, err := run(t, work, nil, "serve", mod, "-p", "0", "--cache-dir", cacheDir, "--state-dir", stateDir)
	if err == nil || !strings.Contains(stderr, "another stateroom process probably has it open") || !strings.Contains(stderr, "--state-dir") {
		t.Errorf("a second serve on %s: err=%v; want the store's advice, stderr:\n%s", stateDir, err, stderr)
	}
	if readyLine.MatchString(stderr) {
		t.Errorf("the second serve printed its ready line before failing:\n%s", stderr)
	}

	// --no-state: another process may run beside it, and keeps nothing.
	q := startDefault(t, work, nil, "serve", mod, "-p", "0", "--cache-dir", cacheDir, "--no-state")
	_, wsURL := q.ready(t)
	if !strings.Contains(q.out.String(), "rooms in memory only (--no-state)") {
		t.Errorf("the ready line does not say the rooms are kept in memory:\n%s", q.out.String())
	}
	c := dial(t, wsURL, "r")
	c.expect("new value: 0")
	c.expect("clients: 1") // the counter example says who is here
	c.send("increment")
	c.expect("new value: 1")
	closed := c.closed()
	if err := q.interrupt(t); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	closed(stateroom.CloseGoingAway)
	if _, err := os.Stat(filepath.Join(work, ".stateroom")); err == nil {
		t.Error("--no-state, yet .stateroom was created in the working directory")
	}
}
