package wasmhost

import (
	"testing"
	"unsafe"
)

// KeepFaultAround sets whether image mappings keep the kernel's
// fault-around (see limitFaultAround), for benchmarks in package
// wasmhost_test to measure against, and returns a function that restores
// the setting. Not safe while instances are being made.
func KeepFaultAround(keep bool) (restore func()) {
	old := keepFaultAround
	keepFaultAround = keep
	return func() { keepFaultAround = old }
}

// ImageFaultAroundErr says why m's image mappings keep the kernel's
// fault-around, or nil when they do not (or m has no image file).
func ImageFaultAroundErr(m *Module) error {
	if m.image == nil {
		return nil
	}
	return m.image.file.faultAroundErr()
}

// PrefaultMode sets whether new instances have the pages a start writes
// pre-faulted (see prefaultStart), and also those it only reads, for
// benchmarks in package wasmhost_test to measure against, and returns a
// function that restores the setting. Not safe while instances are being
// made.
func PrefaultMode(on, reads bool) (restore func()) {
	old := prefaultMode
	prefaultMode.off, prefaultMode.reads = !on, reads
	return func() { prefaultMode = old }
}

// PrefaultPages is how many host pages m's instances get pre-faulted for
// writing (see prefaultStart): -1 before it is learnt.
func PrefaultPages(m *Module) int {
	if m.image == nil || m.image.file == nil {
		return -1
	}
	runs := m.image.file.prefault.runs.Load()
	if runs == nil {
		return -1
	}
	n := 0
	for _, r := range runs.writes {
		n += int(r.n) / hostPageSize
	}
	return n
}

// ImageMappingAddr is the address of s's mapping of its module's image:
// the start of its memory.
func ImageMappingAddr(s any) uintptr {
	b, _ := s.(*service).mem.Read(0, 1)
	return uintptr(unsafe.Pointer(&b[0]))
}

// SmapsBytes is smapsBytes: field (Rss, Anonymous, ...) of this process's
// mapping that starts at addr, in bytes.
func SmapsBytes(t testing.TB, addr uintptr, field string) int64 { return smapsBytes(t, addr, field) }
