package store_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stateroom-go/stateroom/store"
	"github.com/stateroom-go/stateroom/store/storetest"
)

var ctx = context.Background()

func openBolt(t testing.TB, path string) *store.Bolt {
	t.Helper()
	b, err := store.Open(path, store.BoltOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		b := openBolt(t, filepath.Join(t.TempDir(), "state", "rooms.db"))
		if err := store.CheckFile(b); err != nil {
			t.Fatalf("new file fails bbolt's check: %v", err)
		}
		return b
	})
}

func TestBoltReopenKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "state")
	path := filepath.Join(dir, "rooms.db")
	b := openBolt(t, path)
	var last uint64
	for i, room := range []string{"a", "b", "c", "d"} {
		rev, err := b.Save(ctx, room, []byte("data of "+room), 0)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if rev, err = b.Save(ctx, room, []byte("more data of "+room), rev); err != nil {
				t.Fatal(err)
			}
		}
		last = max(last, rev)
	}
	if err := b.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetAside(ctx, "c", 0, "inspect me"); err != nil {
		t.Fatal(err)
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aside, err := b.ListSetAside(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	for _, p := range []struct {
		path string
		max  fs.FileMode
	}{{dir, 0o700}, {filepath.Dir(dir), 0o700}, {path, 0o600}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^p.max != 0 {
			t.Errorf("%s has mode %v; want at most %v", p.path, fi.Mode().Perm(), p.max)
		}
	}

	b = openBolt(t, path)
	defer b.Close()
	list2, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(list2) != fmt.Sprint(list) || len(list2) != 2 {
		t.Fatalf("after reopen List = %+v; before %+v", list2, list)
	}
	for _, in := range list2 {
		rec, err := b.Load(ctx, in.Room)
		if err != nil || rec.Revision != in.Revision || !strings.HasSuffix(string(rec.Data), "data of "+in.Room) {
			t.Fatalf("after reopen Load(%q) = %+v, %v", in.Room, rec, err)
		}
	}
	aside2, err := b.ListSetAside(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(aside2) != fmt.Sprint(aside) || len(aside2) != 1 {
		t.Fatalf("after reopen ListSetAside = %+v; before %+v", aside2, aside)
	}
	if rec, err := b.LoadSetAside(ctx, aside2[0].Name); err != nil || string(rec.Data) != "more data of c" {
		t.Fatalf("after reopen LoadSetAside = %+v, %v", rec, err)
	}
	// The revision counter survived: a re-created room gets a new revision.
	rev, err := b.Save(ctx, "d", []byte("again"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rev <= last {
		t.Fatalf("after reopen, re-created room got revision %d; revisions up to %d were handed out before", rev, last)
	}
}

func TestBoltSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	first := openBolt(t, path)
	if _, err := first.Save(ctx, "r", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		b, err := store.Open(path, store.BoltOptions{LockTimeout: 100 * time.Millisecond})
		if err == nil {
			b.Close()
		}
		done <- err
	}()
	err := <-done // bbolt gives up after LockTimeout; a hang here is the test's timeout
	wantLockedErr(t, path, err)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	b := openBolt(t, path) // released by Close
	defer b.Close()
	if _, err := b.Load(ctx, "r"); err != nil {
		t.Fatal(err)
	}
}

func wantLockedErr(t *testing.T, path string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open of a held file: %v; want ErrLocked", err)
	}
	for _, s := range []string{path, "another stateroom process", "stop that process", "--state-dir"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestBoltBadFiles(t *testing.T) {
	write := func(t *testing.T, path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	makeBolt := func(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
		t.Helper()
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path string, opts store.BoltOptions)
		want  []string // in the error, besides the path
	}{
		{"text file", func(t *testing.T, dir string) (string, store.BoltOptions) {
			p := filepath.Join(dir, "rooms.db")
			write(t, p, bytes.Repeat([]byte("this is not a database\n"), 1000))
			return p, store.BoltOptions{}
		}, []string{"not a bbolt database", "move it away"}},
		{"short garbage", func(t *testing.T, dir string) (string, store.BoltOptions) {
			p := filepath.Join(dir, "rooms.db")
			write(t, p, []byte("garbage"))
			return p, store.BoltOptions{}
		}, []string{"--state-dir"}},
		{"zeros", func(t *testing.T, dir string) (string, store.BoltOptions) {
			p := filepath.Join(dir, "rooms.db")
			write(t, p, make([]byte, 64<<10))
			return p, store.BoltOptions{}
		}, []string{"--state-dir"}},
		{"another bbolt database", func(t *testing.T, dir string) (string, store.BoltOptions) {
			p := filepath.Join(dir, "rooms.db")
			makeBolt(t, p, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
			return p, store.BoltOptions{}
		}, []string{"not a stateroom state file", `"users"`, "move it away"}},
		{"newer format", func(t *testing.T, dir string) (string, store.BoltOptions) {
			p := filepath.Join(dir, "rooms.db")
			makeBolt(t, p, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				return b.Put([]byte("format"), []byte("stateroom-store 2"))
			})
			return p, store.BoltOptions{}
		}, []string{"unknown state file format", "newer", "upgrade"}},
		{"a directory", func(t *testing.T, dir string) (string, store.BoltOptions) {
			return dir, store.BoltOptions{}
		}, []string{"is a directory", "path of a file"}},
		{"directory cannot be created", func(t *testing.T, dir string) (string, store.BoltOptions) {
			f := filepath.Join(dir, "file")
			write(t, f, []byte("x"))
			return filepath.Join(f, "sub", "rooms.db"), store.BoltOptions{}
		}, []string{"cannot create the directory", filepath.Join("file", "sub"), "--state-dir"}},
		{"read-only file (simulated EACCES)", func(t *testing.T, dir string) (string, store.BoltOptions) {
			var o store.BoltOptions
			store.SetOpenFile(&o, func(name string, flag int, perm os.FileMode) (*os.File, error) {
				return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
			})
			return filepath.Join(dir, "rooms.db"), o
		}, []string{"cannot open", "for reading and writing", "writable", "--state-dir"}},
		{"read-only file system (simulated EROFS)", func(t *testing.T, dir string) (string, store.BoltOptions) {
			var o store.BoltOptions
			store.SetOpenFile(&o, func(name string, flag int, perm os.FileMode) (*os.File, error) {
				return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EROFS}
			})
			return filepath.Join(dir, "rooms.db"), o
		}, []string{"cannot open", "writable"}},
		{"read-only file", func(t *testing.T, dir string) (string, store.BoltOptions) {
			if os.Geteuid() == 0 {
				t.Skip("root can write a read-only file; the simulated EACCES case covers the error")
			}
			p := filepath.Join(dir, "rooms.db")
			b := openBolt(t, p)
			b.Close()
			if err := os.Chmod(p, 0o400); err != nil {
				t.Fatal(err)
			}
			return p, store.BoltOptions{}
		}, []string{"cannot open", "writable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, opts := tc.setup(t, t.TempDir())
			before, _ := os.ReadFile(path)
			b, err := store.Open(path, opts)
			if err == nil {
				b.Close()
				t.Fatalf("Open(%s) succeeded", path)
			}
			t.Log(err)
			for _, s := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("Open changed the file it refused")
			}
		})
	}
	if _, err := store.Open("", store.BoltOptions{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open(\"\"): %v; want ErrInvalid", err)
	}
}

// damage opens the state file with bbolt itself and rewrites room's value.
func damage(t *testing.T, path, room string, fn func(v []byte) []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		return b.Put([]byte(room), fn(bytes.Clone(b.Get([]byte(room)))))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBoltDamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rooms.db")
	b := openBolt(t, path)
	r1, err := b.Save(ctx, "data", []byte("some state"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Save(ctx, "header", []byte("other state"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	damage(t, path, "data", func(v []byte) []byte { v[len(v)-1] ^= 1; return v }) // a flipped bit in the data
	damage(t, path, "header", func(v []byte) []byte { return v[:5] })             // a truncated header

	b = openBolt(t, path)
	defer b.Close()
	for _, room := range []string{"data", "header"} {
		_, err := b.Load(ctx, room)
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "set it aside") || !strings.Contains(err.Error(), path) {
			t.Fatalf("Load(%q) of a damaged record: %v; want ErrCorrupt saying to set it aside", room, err)
		}
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Room != "data" || list[0].Revision != r1 || list[1].Room != "header" || list[1].Revision != 0 || list[1].Size != 5 {
		t.Fatalf("List = %+v", list)
	}
	// A damaged header is never overwritten or fenced against blindly.
	if _, err := b.Save(ctx, "header", []byte("x"), 0); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Save over a damaged header: %v; want ErrCorrupt", err)
	}
	if _, err := b.SetAside(ctx, "header", r2, "r"); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("SetAside(expect %d) of a damaged header: %v; want ErrCorrupt", r2, err)
	}
	// Set aside (expect 0), both rooms start afresh with higher revisions.
	for _, room := range []string{"data", "header"} {
		info, err := b.SetAside(ctx, room, 0, "damaged")
		if err != nil {
			t.Fatalf("SetAside(%q): %v", room, err)
		}
		if _, err := b.LoadSetAside(ctx, info.Name); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("LoadSetAside of a damaged record: %v; want ErrCorrupt", err)
		}
		rev, err := b.Save(ctx, room, []byte("fresh"), 0)
		if err != nil || rev <= max(r1, r2) {
			t.Fatalf("Save after SetAside = %d, %v", rev, err)
		}
	}
	aside, err := b.ListSetAside(ctx)
	if err != nil || len(aside) != 2 || aside[0].Revision != r1 || aside[0].Size != len("some state") || aside[1].Revision != 0 {
		t.Fatalf("ListSetAside = %+v, %v", aside, err)
	}
}

func TestBoltCloseWhileSaving(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "rooms.db"))
	var wg sync.WaitGroup
	started := make(chan struct{}, 16)
	for g := range 16 {
		wg.Go(func() {
			room := fmt.Sprint("room-", g)
			var rev uint64
			for i := 0; ; i++ {
				next, err := b.Save(ctx, room, []byte("x"), rev)
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Save: %v", err)
					return
				}
				rev = next
			}
		})
	}
	for range 16 {
		<-started
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// The kill -9 test: a child process (this test binary, re-executed with
// crashChildEnv set) saves self-checking records of crashRooms rooms in a
// loop and prints each revision once Save has returned; the parent kills it
// with SIGKILL after some saves, reopens the file and checks that every room
// holds a complete record at least as new as the last one reported.
const (
	crashChildEnv = "STATEROOM_STORE_TEST_CRASH_CHILD"
	crashRooms    = 4
)

// crashPayload is the data of save seq of room r: seq, r, a filler whose
// length varies up to 255 KiB, and a SHA-256 of all that.
func crashPayload(r int, seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r))
	b = append(b, bytes.Repeat([]byte{byte(seq)}, int(seq*7919%256)*1024)...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// checkCrashPayload verifies a payload and returns its seq.
func checkCrashPayload(r int, b []byte) (uint64, error) {
	if len(b) < 16+sha256.Size {
		return 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return 0, errors.New("payload checksum mismatch")
	}
	seq := binary.BigEndian.Uint64(body)
	if got := binary.BigEndian.Uint64(body[8:]); got != uint64(r) {
		return 0, fmt.Errorf("payload of room %d in room %d", got, r)
	}
	if !bytes.Equal(body, crashPayload(r, seq)[:len(body)]) {
		return 0, errors.New("payload differs from what was saved")
	}
	return seq, nil
}

func crashChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	s, err := store.Open(path, store.BoltOptions{})
	if err != nil {
		fail(err)
	}
	var out sync.Mutex
	for r := range crashRooms {
		go func() {
			room := fmt.Sprint("crash-", r)
			var expect, seq uint64
			rec, err := s.Load(ctx, room)
			switch {
			case err == nil:
				if seq, err = checkCrashPayload(r, rec.Data); err != nil {
					fail(err)
				}
				expect = rec.Revision
			case !errors.Is(err, store.ErrNotFound):
				fail(err)
			}
			for {
				seq++
				rev, err := s.Save(ctx, room, crashPayload(r, seq), expect)
				if err != nil {
					fail(err)
				}
				expect = rev
				out.Lock()
				fmt.Printf("%d %d %d\n", r, rev, seq)
				out.Unlock()
			}
		}()
	}
	select {} // killed by the parent
}

func TestBoltKill9(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs SIGKILL")
	}
	path := filepath.Join(t.TempDir(), "rooms.db")
	var reported [crashRooms]uint64 // the highest revision each room reported saved
	const rounds, savesPerRound = 3, 40
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for n < savesPerRound && sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				t.Fatalf("child printed %q", sc.Text())
			}
			r, _ := strconv.Atoi(f[0])
			rev, _ := strconv.ParseUint(f[1], 10, 64)
			if r < 0 || r >= crashRooms || rev <= reported[r] {
				t.Fatalf("child printed %q after revision %d", sc.Text(), reported[r%crashRooms])
			}
			reported[r] = rev
			n++
			if round == 0 && n == 1 { // the child holds the file: a second process cannot open it
				_, err := store.Open(path, store.BoltOptions{LockTimeout: 100 * time.Millisecond})
				wantLockedErr(t, path, err)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_, _ = io.Copy(io.Discard, stdout)
		werr := cmd.Wait()
		if n < savesPerRound {
			t.Fatalf("round %d: the child stopped after %d saves (%v, %v):\n%s", round, n, sc.Err(), werr, stderr.String())
		}
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by SIGKILL:\n%s", round, werr, stderr.String())
		}

		b := openBolt(t, path)
		if err := store.CheckFile(b); err != nil {
			t.Fatalf("round %d: after kill -9 the file fails bbolt's check: %v", round, err)
		}
		for r := range crashRooms {
			if reported[r] == 0 {
				continue
			}
			rec, err := b.Load(ctx, fmt.Sprint("crash-", r))
			if err != nil {
				t.Fatalf("round %d: after kill -9, room %d: %v", round, r, err)
			}
			if rec.Revision < reported[r] {
				t.Fatalf("round %d: room %d holds revision %d, but the child saved %d before it was killed", round, r, rec.Revision, reported[r])
			}
			if _, err := checkCrashPayload(r, rec.Data); err != nil {
				t.Fatalf("round %d: room %d revision %d: %v", round, r, rec.Revision, err)
			}
			reported[r] = rec.Revision
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
