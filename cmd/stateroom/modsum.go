package main

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
)

// moduleSum identifies the code of a WebAssembly module file: the SHA-256
// of its bytes less its "go:buildid" custom section. The Go toolchain
// derives the build id from its inputs' content, so an edit that changes
// no code (a comment reworded) still changes that section and nothing
// else; hashing it would make `stateroom dev` restart every room for
// nothing. A file that does not parse as a module is hashed whole.
func moduleSum(path string) ([sha256.Size]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sumWithoutBuildID(b), nil
}

// sumWithoutBuildID hashes b, a module's bytes, leaving out every custom
// section named go:buildid.
func sumWithoutBuildID(b []byte) [sha256.Size]byte {
	const header = 8 // "\0asm" and the version
	if len(b) < header || string(b[:4]) != "\x00asm" {
		return sha256.Sum256(b)
	}
	h := sha256.New()
	h.Write(b[:header])
	for rest := b[header:]; len(rest) > 0; {
		id := rest[0]
		size, n := binary.Uvarint(rest[1:])
		if n <= 0 || size > uint64(len(rest)-1-n) {
			return sha256.Sum256(b) // malformed: the whole file, to be safe
		}
		end := 1 + n + int(size)
		if id != 0 || customName(rest[1+n:end]) != "go:buildid" {
			h.Write(rest[:end])
		}
		rest = rest[end:]
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// customName returns the name a custom section's payload starts with, or
// "" if it cannot be read.
func customName(payload []byte) string {
	l, n := binary.Uvarint(payload)
	if n <= 0 || l > uint64(len(payload)-n) {
		return ""
	}
	return string(payload[n : n+int(l)])
}
