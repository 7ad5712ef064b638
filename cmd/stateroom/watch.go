package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// defaultDebounce is how long the watcher waits after the last change
// before reporting a batch: long enough to take an editor's "write temp
// file, rename, chmod" or a `git checkout` of many files as one change,
// short enough to feel immediate.
const defaultDebounce = 150 * time.Millisecond

// watcher reports files changed under a set of directory trees, in batches:
// a batch is sent once no change has come for the debounce delay. fsnotify
// watches single directories, so the watcher adds every directory of each
// tree, and directories created later.
type watcher struct {
	fsw      *fsnotify.Watcher
	debounce time.Duration
	onError  func(error)
}

// newWatcher watches the trees under roots, leaving out the directories
// skipDir names, with their subtrees. onError gets the watcher's errors
// (from run's goroutine).
func newWatcher(roots []string, debounce time.Duration, onError func(error)) (*watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{fsw: fsw, debounce: debounce, onError: onError}
	for _, r := range roots {
		if err := w.addTree(r); err != nil {
			fsw.Close()
			return nil, err
		}
	}
	return w, nil
}

// skipDir says whether a directory is left unwatched: what the go command
// ignores (names starting with . or _, testdata), build output (dist) and
// node_modules.
func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
		name == "dist" || name == "testdata" || name == "node_modules"
}

// skipFile says whether a changed file is noise: editor swap and backup
// files, hidden files.
func skipFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") ||
		name == "4913" // vim's probe file
}

// addTree watches root and every directory below it.
func (w *watcher) addTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != root && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		return w.fsw.Add(path)
	})
}

// run sends batches of changed paths on out until ctx is done, then closes
// the fsnotify watcher. Changes that come while the receiver is busy (a
// build is running) join the next batch rather than queueing one batch
// each, so a burst of edits costs one rebuild.
func (w *watcher) run(ctx context.Context, out chan<- []string) {
	defer w.fsw.Close()
	var (
		pending []string
		timer   = time.NewTimer(time.Hour)
		ready   bool // debounce elapsed: pending may be sent
	)
	timer.Stop()
	defer timer.Stop()
	for {
		var send chan<- []string
		if ready && len(pending) > 0 {
			send = out
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			if !slices.Contains(pending, ev.Name) {
				pending = append(pending, ev.Name)
			}
			ready = false
			timer.Reset(w.debounce)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.onError(err)
		case <-timer.C:
			ready = true
		case send <- pending:
			pending, ready = nil, false
		}
	}
}

// relevant filters an event, and starts watching a directory that was just
// created (a new package, say).
func (w *watcher) relevant(ev fsnotify.Event) bool {
	// A bare chmod is what indexers and backup tools do; it changes no
	// content.
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	if ev.Has(fsnotify.Create) {
		if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
			if skipDir(name) {
				return false
			}
			if err := w.addTree(ev.Name); err != nil {
				w.onError(err)
			}
			return true
		}
	}
	return !skipFile(name)
}

// codeSum identifies what a build reads of a file: for a Go file its
// tokens, without the comments (directives such as //go:build, //go:embed
// and //export excepted) and without the layout, so that a save that only
// edits comments, adds blank lines or reflows them keeps the sum; for
// go.mod and go.sum their bytes. ok is false for a file that cannot be
// read or does not scan (a syntax error is the compiler's to report).
func codeSum(path string) (sum [sha256.Size]byte, ok bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		return sum, false
	}
	if filepath.Ext(path) != ".go" {
		return sha256.Sum256(src), true
	}
	return goCodeSum(src)
}

// goCodeSum is codeSum of Go source text. A file that uses cgo (import
// "C") is hashed whole: its comments are C code.
func goCodeSum(src []byte) (sum [sha256.Size]byte, ok bool) {
	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var sc scanner.Scanner
	failed := false
	sc.Init(file, src, func(token.Position, string) { failed = true }, scanner.ScanComments)
	h := sha256.New()
	var buf []byte
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		switch {
		case tok == token.COMMENT && !isDirective(lit):
			continue
		case tok == token.SEMICOLON:
			// An inserted semicolon's literal is "\n", an explicit one's
			// ";": the same statement either way.
			lit = ""
		case tok == token.STRING && lit == `"C"`:
			return sha256.Sum256(src), true
		}
		// Each token as kind, length, text: no two streams hash alike.
		buf = binary.AppendUvarint(buf[:0], uint64(tok))
		buf = binary.AppendUvarint(buf, uint64(len(lit)))
		h.Write(buf)
		h.Write([]byte(lit))
	}
	if failed || sc.ErrorCount > 0 {
		return sum, false
	}
	h.Sum(sum[:0])
	return sum, true
}

// isDirective says whether a comment is read by the go command or the
// compiler (//go:build, //go:embed, //go:generate, //go:wasmexport,
// //export, //line, // +build): changing one can change the build.
func isDirective(comment string) bool {
	c, ok := strings.CutPrefix(comment, "//")
	if !ok {
		return false // a /* block */; //line has a block form, never written by hand
	}
	return strings.HasPrefix(c, "go:") || strings.HasPrefix(c, "export ") ||
		strings.HasPrefix(c, "line ") || strings.HasPrefix(c, "extern ") ||
		strings.HasPrefix(strings.TrimSpace(c), "+build")
}
