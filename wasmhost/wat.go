package wasmhost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// looksLikeWAT reports whether src reads as WebAssembly text: after
// whitespace, a byte-order mark and comments, it opens a parenthesis.
func looksLikeWAT(src []byte) bool {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	for {
		src = bytes.TrimLeft(src, " \t\r\n")
		switch {
		case bytes.HasPrefix(src, []byte(";;")):
			i := bytes.IndexByte(src, '\n')
			if i < 0 {
				return false
			}
			src = src[i+1:]
		case bytes.HasPrefix(src, []byte("(;")):
			i := bytes.Index(src, []byte(";)"))
			if i < 0 {
				return false
			}
			src = src[i+2:]
		default:
			return bytes.HasPrefix(src, []byte("("))
		}
	}
}

// watToWasm converts WebAssembly text with wabt's wat2wasm. Why not a Go
// WAT parser: wabt is the reference and tests already need it, and loading
// text is a development convenience, not a production path.
func watToWasm(ctx context.Context, src []byte, name string) ([]byte, error) {
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		return nil, fmt.Errorf("%w: %s is WebAssembly text (.wat) and wat2wasm is not on PATH; install wabt (apt-get install wabt, brew install wabt) or convert it first: wat2wasm %s -o service.wasm", ErrWAT, name, name)
	}
	dir, err := os.MkdirTemp("", "stateroom-wat-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWAT, name, err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "module.wat"), filepath.Join(dir, "module.wasm")
	if err := os.WriteFile(in, src, 0o600); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWAT, name, err)
	}
	if msg, err := exec.CommandContext(ctx, tool, in, "-o", out).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: wat2wasm rejected %s (%w); fix the text:\n%s", ErrWAT, name, err, bytes.TrimSpace(bytes.ReplaceAll(msg, []byte(in), []byte(name))))
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWAT, name, err)
	}
	return bin, nil
}
