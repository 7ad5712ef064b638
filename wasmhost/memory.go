package wasmhost

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// Guest memory. wazero's default linear memory is a Go []byte: it copies
// the module's data segments into every new instance (dirtying every page
// they cover), grows by allocating a bigger slice and copying (the old one
// stays resident until the Go heap hands it back, if ever), and is freed
// only by the garbage collector. A Go guest made every room cost megabytes
// that never came back (issue 14).
//
// On Linux the host gives each instance memory of its own instead
// (memory_linux.go), through wazero's experimental allocator hook:
//
//   - one mapping per instance reserves Options.MemoryLimit of address
//     space (anonymous, private, no swap reservation), so growing the
//     memory is lengthening a slice: nothing is copied, and a page costs
//     RAM only once the guest touches it;
//   - the module's data segments are taken out of the binary before it is
//     compiled (wasmpatch.TakeData) and written once, at Load, into an
//     in-memory file (memfd) laid out as the memory they initialise; each
//     instance maps that file copy-on-write over the start of its
//     reservation, so an instance shares every page it does not write
//     (an image of a few pages is copied instead: see minSharedPages),
//     with the kernel's fault-around turned off for that mapping where
//     userfaultfd allows it, so that VmRSS counts the pages a room read
//     and not the 64 KiB around each (memory_linux.go, limitFaultAround);
//   - the pages every room's start writes, learnt once per module, are
//     populated for writing right after mapping, before the guest runs,
//     rather than faulted in one by one (memory_linux.go, prefaultStart);
//   - closing the instance unmaps the whole reservation: its memory goes
//     back to the operating system at once.
//
// A module whose data segments are not all active at constant offsets
// (passive segments, offsets from imported globals) keeps its segments and
// wazero's copy at instantiation; it still gets the reservation. Other
// platforms, and Options.HeapMemory, keep wazero's default, with the
// module's data segments merged once at Load (compileCopied), so that
// wazero's copy at instantiation does not pay for each of a Go module's
// tens of thousands of segments.
//
// What bounds a room's resident memory: its mapping is MemoryLimit long
// and the guest cannot address anything else, so the instance's pages
// resident at any time are at most MemoryLimit (the shared image's pages
// are in RAM once for the whole process, though /proc's VmRSS adds a
// shared page again for every mapping that has read it; Pss does not).
// The rest of a room (wazero's module instance, tables, globals, the
// host's bookkeeping) is on the Go heap and does not grow with the guest's
// memory. The mapping outlives wazero's hold on it until the service
// closes too (see linearMemory), and Module.Close waits for calls in
// progress (inflight.go).

// memoryImage is a module's initial memory, built once from its active data
// segments and shared by all its instances. The platform's part is
// imageFile (memory_linux.go).
type memoryImage struct {
	size  uint64     // bytes, a multiple of pageSize; at most the memory's minimum
	file  *imageFile // nil for a small image, copied instead (see minSharedPages)
	pages []imagePage
}

// imagePage is a host page of a small image that is not all zeros.
type imagePage struct {
	offset uint64
	data   []byte
}

// minSharedPages is the fewest non-zero pages (of 4 KiB) an image must
// have to be shared rather than copied into each instance. The kernel maps
// a file's pages in by 64 KiB around the one touched (fault-around), and
// VmRSS counts each page an instance maps, shared or not, so an image of a
// few pages (an upstream Rust module's data is often one) cost 82 KiB of
// VmRSS per instance shared against 26 KiB copied (BenchmarkInstances).
// Copying writes only its pages, which is what wazero did. With
// fault-around off (limitFaultAround) sharing would cost no more VmRSS,
// but where userfaultfd is refused it still does, and copying a few pages
// costs next to nothing.
const minSharedPages = 16

// compileShared compiles bin for instances whose memory the host maps
// itself: with its data segments taken out into m.image when the module
// allows (see the comment at the top of this file). Anything that prevents
// it (segments that are not constant, an image past the memory's minimum,
// which instantiation must refuse, a system that cannot make the image
// file) compiles bin as it is, so a module runs exactly as it did before;
// only a failure of the operating system is logged.
func (m *Module) compileShared(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	if m.set.heapMemory {
		return m.compileCopied(ctx, bin)
	}
	rest, segs, err := wasmpatch.TakeData(bin)
	if err != nil || len(segs) == 0 {
		return m.compileCopied(ctx, bin)
	}
	cm, err := compileModule(ctx, m.rt, rest)
	if err != nil {
		return m.compileCopied(ctx, bin)
	}
	img, err := newMemoryImage(cm, segs)
	if err != nil || img == nil {
		_ = cm.Close(ctx)
		if err != nil {
			m.set.logger.Warn("wasm module's data segments are copied into every instance: the shared image could not be made", "module", m.name, "err", err)
		}
		return m.compileCopied(ctx, bin)
	}
	if err := img.file.faultAroundErr(); err != nil {
		m.set.logger.Info("wasm rooms' VmRSS counts pages of the module's shared memory image they did not read: the kernel's fault-around stays on for it (memory_linux.go); memory use is the same", "module", m.name, "err", err)
	}
	m.image = img
	return cm, nil
}

// compileCopied compiles bin for instances into which wazero copies the
// data segments itself, with the segments merged once, here, across gaps of
// up to wasmpatch.MaxMergeGap zero bytes. wazero evaluates every segment's
// offset and copies it at each instantiation, and a module `stateroom build`
// wrote keeps tens of thousands of small segments (the smallest file; see
// wasmpatch.FreezeMergeGap): unmerged, they were 44% of an instantiation
// (docs/PERFORMANCE.md, "Go guests"). A module whose segments cannot be
// merged safely is compiled as it is. Unmerged, each segment also cost
// every instance a data instance in wazero (24 bytes: 0.68 MB per room for
// the counter's 28,000).
func (m *Module) compileCopied(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	if merged, before, after, err := wasmpatch.MergeData(bin, wasmpatch.MaxMergeGap); err == nil && before != after {
		m.set.logger.Debug("wasm module's data segments merged for copying into each instance", "module", m.name, "segments", before, "merged", after)
		bin = merged
	}
	return compileModule(ctx, m.rt, bin)
}

// newMemoryImage lays segs out as the memory they initialise and makes the
// image file of it. It returns nil, and no error, when the image does not
// fit the memory's minimum (instantiating the original module reports
// that) or the module exports no memory (Load reports that).
func newMemoryImage(cm wazero.CompiledModule, segs []wasmpatch.Segment) (*memoryImage, error) {
	def, ok := cm.ExportedMemories()["memory"]
	if !ok {
		return nil, nil
	}
	minBytes := uint64(def.Min()) * pageSize
	var end uint64
	for _, s := range segs {
		end = max(end, s.End())
	}
	if end > minBytes {
		return nil, nil
	}
	size := (end + pageSize - 1) / pageSize * pageSize
	b := make([]byte, size) // transient: the file keeps the pages that are not zero
	for _, s := range segs {
		copy(b[s.Offset:], s.Data)
	}
	img := &memoryImage{size: size}
	const host = 4096 // the granularity of the copy; any divisor of the host page works
	for off := uint64(0); off < size; off += host {
		if p := b[off : off+host]; !isZero(p) {
			img.pages = append(img.pages, imagePage{offset: off, data: p})
		}
	}
	if len(img.pages) < minSharedPages {
		return img, nil
	}
	img.pages = nil
	f, err := newImageFile(b)
	if err != nil {
		return nil, fmt.Errorf("the memory image (%d KiB): %w", size>>10, err)
	}
	img.file = f
	return img, nil
}

// close releases the image file. Mappings of it stay valid.
func (img *memoryImage) close() {
	if img != nil && img.file != nil {
		img.file.close()
	}
}

// isZero reports whether b is all zeros.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
