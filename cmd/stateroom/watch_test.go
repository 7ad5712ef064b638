package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestCodeSum: comments and layout do not change a Go file's sum; code
// and directives do.
func TestCodeSum(t *testing.T) {
	const base = "package p\n\n// F is f.\nfunc F() int {\n\treturn 1 // one\n}\n"
	sum := func(src string) [32]byte {
		t.Helper()
		s, ok := goCodeSum([]byte(src))
		if !ok {
			t.Fatalf("goCodeSum(%q) failed", src)
		}
		return s
	}
	want := sum(base)
	for _, same := range []string{
		"package p\n\n// F is f, reworded.\nfunc F() int {\n\treturn 1 // one\n}\n",
		"package p\n\n// F is f.\n//\n// More lines.\n\nfunc F() int {\n\treturn 1\n}\n",
		"package p\n/* a block */\nfunc F() int { return 1; }\n",
	} {
		if sum(same) != want {
			t.Errorf("%q: sum differs from %q's; only comments or layout changed", same, base)
		}
	}
	for _, differs := range []string{
		"package p\n\n// F is f.\nfunc F() int {\n\treturn 2 // one\n}\n",
		"package p\n\n// F is f.\nfunc G() int {\n\treturn 1 // one\n}\n",
		"//go:build wasip1\n\npackage p\n\n// F is f.\nfunc F() int {\n\treturn 1 // one\n}\n",
		"package p\n\n//go:wasmexport f\nfunc F() int {\n\treturn 1 // one\n}\n",
		"package p\n\n//export F\nfunc F() int {\n\treturn 1 // one\n}\n",
		"package p\n\n// #include <stdio.h>\nimport \"C\"\n\nfunc F() int {\n\treturn 1\n}\n",
	} {
		if sum(differs) == want {
			t.Errorf("%q: same sum as %q; the build differs", differs, base)
		}
	}
	// cgo: the comments are C code.
	cgo := "package p\n\n// #include <stdio.h>\nimport \"C\"\n"
	if sum(cgo) == sum("package p\n\n// #include <stdlib.h>\nimport \"C\"\n") {
		t.Error("a cgo preamble's edit kept the sum")
	}
	if _, ok := goCodeSum([]byte("package p\n\nvar s = `unterminated\n")); ok {
		t.Error("a file that does not scan has a sum")
	}
}

// FuzzCodeSum: goCodeSum never panics, and a line comment appended to a
// file that scans keeps its sum (unless the file uses cgo, whose comments
// are code).
func FuzzCodeSum(f *testing.F) {
	for _, seed := range []string{
		"package p\n",
		"package p\n\nfunc F() int { return 1 } // one\n",
		"package p\nvar x = 1 /* c */ + 2",
		"//go:build wasip1\npackage p",
		"package p\n\n// #include <x.h>\nimport \"C\"\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		sum, ok := goCodeSum([]byte(src))
		if !ok || strings.Contains(src, `"C"`) {
			return
		}
		again, ok := goCodeSum([]byte(src + "\n// a comment\n"))
		if !ok || again != sum {
			t.Fatalf("appending a comment to %q changed its sum (ok=%v)", src, ok)
		}
	})
}
