package server

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// Static files (Options.StaticDir, ClientDir, StaticFS) are served through
// guardedFS, which serves what a page needs and nothing a directory happens
// to hold besides: a symlink that leads out of the root is not followed (a
// link to /etc, or to the project's secrets, would otherwise publish them),
// dotfiles and dot-directories (.env, .git) are not served, and a directory
// is served only through its index.html, never as a listing. Each refusal
// is a 404, as if the file were not there: a 403 would confirm it is.

// staticHandler serves fsys with http.FileServerFS behind guardedFS.
func staticHandler(fsys fs.FS) http.Handler {
	return http.FileServerFS(guardedFS{fsys})
}

// dirRoot is a directory of static files (StaticDir, ClientDir), opened
// for each request through an os.Root: the kernel-checked way to follow
// only the symlinks that stay inside the directory (os.Root refuses the
// others, and absolute ones). It is opened per request, not once, so a
// directory replaced while the server runs (a rebuild that recreates
// dist/static) is served as it is now, not as it was at New.
type dirRoot string

// Open opens name inside the directory.
func (d dirRoot) Open(name string) (fs.File, error) {
	r, err := os.OpenRoot(string(d))
	if err != nil {
		return nil, err
	}
	// A file opened through the root stays open after the root is closed:
	// it holds its own descriptor.
	defer r.Close()
	return r.FS().Open(name)
}

// guardedFS is fsys with the refusals described above.
type guardedFS struct{ fsys fs.FS }

// Open opens name unless one of the rules refuses it. The errors are
// fs.ErrNotExist, so that http.FileServer answers 404, except for
// fs.ErrPermission (403, as for any file the server may not read).
func (g guardedFS) Open(name string) (fs.File, error) {
	if hiddenPath(name) {
		return nil, notFound(name)
	}
	if rl, ok := g.fsys.(fs.ReadLinkFS); ok && !staysInside(rl, name) {
		return nil, notFound(name)
	}
	f, err := g.fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
		// os.Root's "path escapes from parent", say, which would be a 500.
		return nil, notFound(name)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, notFound(name)
	}
	if fi.IsDir() {
		// http.FileServer serves a directory's index.html, and lists a
		// directory that has none: refuse that one, so it never lists.
		idx, err := g.fsys.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			return nil, notFound(name)
		}
		idx.Close()
	}
	return f, nil
}

func notFound(name string) error {
	return &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// hiddenPath reports whether the fs.FS path name has an element that
// starts with a dot (.env, .git/config, a/.secret), other than a leading
// ".well-known" (RFC 8615: public by definition, and where an ACME
// challenge or security.txt is looked for).
func hiddenPath(name string) bool {
	if name == "." {
		return false
	}
	for i, elem := range strings.Split(name, "/") {
		if strings.HasPrefix(elem, ".") && (i > 0 || elem != ".well-known") {
			return true
		}
	}
	return false
}

// maxSymlinkHops bounds the symlinks staysInside follows for one path, as
// the kernel does (ELOOP).
const maxSymlinkHops = 40

// staysInside reports whether name, with every symlink on its way
// resolved, stays inside fsys: no link is absolute or climbs above the
// root. It is for an Options.StaticFS that can read links (os.DirFS does);
// a StaticDir or ClientDir goes through os.Root, which does the same check
// itself. A path element that does not exist ends the check with true: Open
// then reports it.
func staysInside(fsys fs.ReadLinkFS, name string) bool {
	todo := strings.Split(name, "/")
	done := "." // the resolved part, a clean path inside the root
	for hops := 0; len(todo) > 0; {
		elem := todo[0]
		todo = todo[1:]
		next := path.Join(done, elem)
		if next == ".." || strings.HasPrefix(next, "../") {
			return false
		}
		fi, err := fsys.Lstat(next)
		if err != nil {
			return true
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return false
		}
		target, err := fsys.ReadLink(next)
		if err != nil || path.IsAbs(target) || strings.HasPrefix(target, `\`) {
			return false
		}
		// The target is relative to the link's directory, done; resolve
		// it again element by element (it may hold links itself).
		todo = append(strings.Split(target, "/"), todo...)
	}
	return true
}
