package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWatcherBatches checks that a burst of changes arrives as one batch,
// that noise (editor files, dist/, chmod) is left out, and that a directory
// created after the start is watched.
//
// A step's changes must come within one debounce of each other to make
// one batch, so the test sets a debounce far longer than a loaded machine
// takes between two small file operations. It also makes all of a step's
// changes before it reads: a batch waits for its reader, and changes that
// come meanwhile join it, so a slow step splits only if, in addition, the
// watcher has not yet received an event the kernel already queued when
// the test starts reading.
func TestWatcherBatches(t *testing.T) {
	const debounce = time.Second
	root := t.TempDir()
	for _, d := range []string{"dist", "pkg"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w, err := newWatcher([]string{root}, debounce, func(err error) { t.Errorf("watcher error: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []string)
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, out) }()
	defer func() { cancel(); <-done }()

	write := func(rel, content string) string {
		p := filepath.Join(root, rel)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.go", "package a")
	write("dist/server.wasm", "x") // build output: not watched
	write(".a.go.swp", "x")        // editor noise
	b := write("pkg/b.go", "package b")
	write("a.go", "package a // again") // the same file twice: once in the batch
	if err := os.Chmod(b, 0o600); err != nil {
		t.Fatal(err)
	}

	next := func() []string {
		t.Helper()
		select {
		case batch := <-out:
			slices.Sort(batch)
			return batch
		case <-time.After(10 * time.Second):
			t.Fatal("no batch within 10s")
			return nil
		}
	}
	if got, want := next(), []string{a, b}; !slices.Equal(got, want) {
		t.Fatalf("batch %q, want %q", got, want)
	}

	// A directory created now is watched, with what it holds.
	sub := filepath.Join(root, "newpkg")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// Wait for the directory's own event before writing inside it, so the
	// watch is in place.
	if got := next(); !slices.Equal(got, []string{sub}) {
		t.Fatalf("batch %q, want the new directory %s", got, sub)
	}
	c := write("newpkg/c.go", "package c")
	if got := next(); !slices.Equal(got, []string{c}) {
		t.Fatalf("batch %q, want %q", got, c)
	}

	// Nothing else is pending. A stray event would be sent one debounce
	// after it came, so wait past that.
	select {
	case batch := <-out:
		t.Fatalf("unexpected batch %q", batch)
	case <-time.After(2 * debounce):
	}
}
