package wasmhost

import (
	"encoding/binary"
	"os"
	"sync"
	"unsafe"
)

// Which pages an instance wrote. The host maps each instance's memory
// itself (memory_linux.go), so the kernel knows which of its pages are
// still what the mapping started as: a page the instance never wrote is
// either not in RAM at all (it reads as zeros, or as the image file), or
// the image file's own page, shared and unchanged; a page it wrote is a
// private, anonymous page of its own. /proc/self/pagemap tells these apart
// with one read of 8 bytes per host page, where comparing the page with
// the module's base image reads 4 KiB, and, for memory never touched,
// makes the kernel fault in a page on every 4 KiB read. Raw snapshots and
// restores ask it (cleanPages) so that they neither read nor compare the
// pages that are still as instantiation found them (snapshot_pristine.go).
// A Rust counter's memory is 17 pages of which 15 are untouched stack: its
// wake compared 960 KiB with zeros (BenchmarkWake).
//
// What counts as written, per host page (Documentation/admin-guide/mm/
// pagemap.rst): swapped out (bit 62), or present (bit 63) and not
// file-backed (bit 61) — a private copy. Anonymous memory the guest only
// read is mapped to the kernel's shared zero page, which pagemap also
// shows as present and not file-backed: it counts as written, so such a
// page is compared as before. Why not tell it apart by the "exclusively
// mapped" bit (56): a page merged by KSM (a service started with
// MemoryKSM=yes) is anonymous and not exclusive either, and its content is
// the guest's; a page compared once too often is the safe mistake. For the
// same reason any entry that is not a page (a migration entry, a
// userfaultfd marker on the image's mappings, memory_linux.go) shows as
// swapped and counts as written.

// pagemap is /proc/self/pagemap, opened on first use and kept open:
// ReadAt (pread) on it is safe from any goroutine. nil if it cannot be
// opened (no /proc, a sandbox without pagemap): then every page is
// compared, as on other platforms.
var pagemap = sync.OnceValue(func() *os.File {
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil
	}
	return f
})

// The pagemap bits read (see above).
const (
	pmPresent   = 1 << 63
	pmSwapped   = 1 << 62
	pmFile      = 1 << 61
	pmExclusive = 1 << 56
)

// pagemapChunk is how many wasm pages one read covers at most (with 4 KiB
// host pages, 8 KiB of entries), so that the buffer stays small whatever
// the memory's size.
const pagemapChunk = 64

// cleanPages reads, for each host page of the first n pages of the
// instance's memory, whether the instance has written it since it was
// mapped (see above): a page it has not written holds its pristine content
// (snapshot_pristine.go). The map knows nothing (every page counts as
// written) when the kernel cannot tell: memory that wazero allocated
// (Options.HeapMemory), no pagemap, or host pages larger than wasm pages.
func (s *service) cleanPages(n uint32) cleanMap {
	l := s.linear
	f := pagemap()
	if l == nil || f == nil || hostPageSize > pageSize || uint64(n)*pageSize > uint64(len(l.mem)) {
		return cleanMap{}
	}
	per := pageSize / hostPageSize // entries per wasm page
	start := uintptr(unsafe.Pointer(unsafe.SliceData(l.mem))) / uintptr(hostPageSize)
	buf := make([]byte, 8*per*min(int(n), pagemapChunk))
	clean := make([]bool, int(n)*per)
	for first := 0; first < len(clean); first += len(buf) / 8 {
		b := buf[:8*min(len(clean)-first, len(buf)/8)]
		if _, err := f.ReadAt(b, int64(start+uintptr(first))*8); err != nil {
			return cleanMap{}
		}
		for j := range len(b) / 8 {
			e := binary.LittleEndian.Uint64(b[8*j:])
			clean[first+j] = e&pmSwapped == 0 && (e&pmPresent == 0 || e&pmFile != 0)
		}
	}
	return cleanMap{clean: clean, per: per}
}

// startPages reads, for each host page of the instance's memory right
// after its start, whether the start wrote it (a present, anonymous page
// mapped only here: not the shared zero page, see the top of this file)
// and whether it only read a page of the image file (present and
// file-backed), for learning what to pre-fault (memory_linux.go,
// prefaultStart). Both are nil when the kernel cannot tell.
func (s *service) startPages() (written, read []bool) {
	l := s.linear
	f := pagemap()
	n := uint64(s.pages()) * pageSize / uint64(hostPageSize)
	if l == nil || f == nil || n*uint64(hostPageSize) > uint64(len(l.mem)) {
		return nil, nil
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(l.mem))) / uintptr(hostPageSize)
	written, read = make([]bool, n), make([]bool, n)
	buf := make([]byte, 8*512)
	for first := 0; first < len(written); first += len(buf) / 8 {
		b := buf[:8*min(len(written)-first, len(buf)/8)]
		if _, err := f.ReadAt(b, int64(start+uintptr(first))*8); err != nil {
			return nil, nil
		}
		for j := range len(b) / 8 {
			e := binary.LittleEndian.Uint64(b[8*j:])
			present := e&pmPresent != 0
			written[first+j] = present && e&pmFile == 0 && e&pmExclusive != 0
			read[first+j] = present && e&pmFile != 0
		}
	}
	return written, read
}
