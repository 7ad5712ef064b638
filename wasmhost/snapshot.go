package wasmhost

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	pageflate "github.com/klauspost/compress/flate"
	"github.com/tetratelabs/wazero/api"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// Snapshots. Every instance is a stateroom.Snapshotter, so every room of a
// WebAssembly service can be durable, by one of two paths:
//
//   - a module that exports stateroom_snapshot and stateroom_restore (the
//     ABI's snapshot extension; the Go SDK does) gives its state as bytes
//     and takes them back. Those bytes may cross builds: they are what the
//     service chose to save, and its Restore decides what it can read.
//   - for any other module (every upstream Rust module), and for a guest
//     whose stateroom_snapshot says it has none (a Go service that is not
//     a stateroom.Snapshotter), the host saves the instance itself: its
//     linear memory, the pages that differ from the module's base image,
//     DEFLATE-compressed, and its mutable globals. Such a snapshot only
//     fits the identical module: it is tied to the module's sha256, and
//     any other module refuses it with stateroom.ErrIncompatibleSnapshot,
//     so the room starts fresh after a rebuild.
//
// A snapshot starts with a header of the host's own that names its kind,
// so Restore knows the path, and ends with a checksum, so damaged bytes
// are refused before anything in the instance changes:
//
//	"SRwm"            magic
//	u8                format version (1)
//	uvarint len, kind "guest", "sparse-memory" or "memory"
//	body              by kind, below
//	u32               CRC-32 (IEEE) of everything before it, little-endian
//
// The body of "guest" is the guest's bytes as stateroom_snapshot gave
// them. The body of "sparse-memory", which the host writes:
//
//	[32]byte  sha256 of the module's binary
//	[8]byte   the id of the process that took it (see processID)
//	uvarint   memory size, in 64 KiB pages
//	uvarint   n, then n u64 LE: the module's mutable globals, in index order
//	uvarint   ptr, uvarint size: the host's event buffer in guest memory
//	varint    the instance's monotonic clock, ns
//	varint    the wall clock, unix ns
//	uvarint   n, then n uvarint: the clients the guest knows of, ascending,
//	          each but the first as the difference from the one before
//	uvarint   n, then n uvarint: the indices of the pages stored, likewise
//	n uvarint the chunks stored of each stored page: bit k set stores its
//	          bytes k*4096 to (k+1)*4096; the others equal the base image's
//	rest      DEFLATE (RFC 1951) of the stored chunks, 4 KiB each, in order,
//	          each the XOR of the page's bytes with the base image's
//
// The body of "memory", which hosts before it wrote and this one reads, is
// the same without the chunks: every stored page is stored whole, as is.
//
// Why a page diff against the base image: a guest's memory is mostly what
// instantiation left (data, a runtime's heap arenas, zeros); a Go guest
// after a thousand events differs from it in 12 of its 50 pages. Why
// DEFLATE at its fastest level: its format is stable and in the standard
// library (any inflater reads what the host wrote), and memory compresses
// well at that level, which matters because the runtime snapshots with the
// room held. On those 12 pages of a Go guest, the standard library's
// BestSpeed made 1.4% of their size at 460 MB/s, DefaultCompression 1.3%
// at 190 MB/s and HuffmanOnly 16% at 160 MB/s (see also BenchmarkSnapshot).
// The pages are written with github.com/klauspost/compress/flate (already
// in the module graph through the Prometheus client), which writes the
// same format at level 1 in less than half the time on a guest's pages
// (the stack page of a Rust counter: 33 µs against 84 µs; its data page
// 108 µs against 226 µs, 3% larger). zlib or gzip would add only a header
// and a second checksum to the one the snapshot has. Why chunks, and the
// XOR with the base image: inflating is most of a restore, and runs of
// zeros inflate slowly (a match at distance 1, which both inflaters copy a
// few bytes at a time: some 50 µs a page). A stored page of a guest mostly
// equals the base image (a Rust counter's stack page is one chunk of stack
// and 15 of zeros; its data page differs in a few words of the counter and
// the allocator), so its XOR is mostly zeros: those chunks are neither
// stored nor inflated, and where the instance it goes into already holds
// the base there, not written either (storedPage.write). The stored
// chunks are read with klauspost's inflater, which took two thirds of the
// standard library's time on a Rust counter's chunks.
//
// A raw snapshot pauses the instance, so a restored one does not get Init
// again (its memory is that of a guest that had it; upstream's guests run
// their service's init on every Init). What happens to the clients the
// guest knew of depends on where the snapshot comes from. From this process,
// it is a hibernated room waking, whose clients stayed connected: the guest
// goes on with them. From another process (a restart, a deploy), those
// clients' connections are gone and they reconnect with a new Connect: the
// guest gets a Disconnect for each in place of the Init. The runtime's
// InitEvent.Restored cannot tell these apart, hence the process id.
//
// What a raw snapshot does not carry: tables (a module that changes its
// function table at run time, rare outside dynamic linking, gets it back
// as instantiation left it) and anything the guest keeps outside its
// instance. Its monotonic clock goes on from the snapshot's reading plus
// the time since (see nanotime).

// The snapshot header.
const (
	snapshotMagic   = "SRwm"
	snapshotVersion = 1
	kindGuest       = "guest"
	kindSparse      = "sparse-memory"
	kindMemory      = "memory" // read only: see above
	maxKindLen      = 32
	checksumSize    = 4
)

// A page's chunks, the unit of "sparse-memory": 16 of 4 KiB, the smallest
// host page, so that a chunk left as it is is also a host page the kernel
// need not fill (see storedPage.write).
const (
	chunkSize     = 4096
	chunksPerPage = pageSize / chunkSize
	allChunks     = 1<<chunksPerPage - 1 // every chunk of a page stored
)

var _ stateroom.Snapshotter = (*service)(nil)

// zeroPage is what a page beyond the base image holds at instantiation.
var zeroPage [pageSize]byte

// processID tells the snapshots this process took from those of another
// (see the clients above). Random, so that a restarted process on the same
// machine, or its pid reused, is another.
var processID = func() (id [8]byte) {
	_, _ = rand.Read(id[:]) // crypto/rand.Read does not fail
	return id
}()

// errDamaged is wrapped by the decoding errors of a snapshot.
var errDamaged = errors.New("damaged or truncated snapshot")

// Snapshot returns the instance's state (stateroom.Snapshotter): the
// guest's own snapshot if it exports one, else its raw memory. The
// runtime calls it between events. An error wraps ErrSnapshot; the runtime
// skips the save. A trap or an exceeded budget in the guest's
// stateroom_snapshot also faults the room at its next event: the guest
// was stopped halfway.
func (s *service) Snapshot() ([]byte, error) {
	if err := s.usable(ErrSnapshot); err != nil {
		return nil, err
	}
	if s.module.snapExports {
		b, ok, err := s.guestSnapshot()
		if ok || err != nil {
			return b, err
		}
	}
	return s.rawSnapshot()
}

// Restore sets the state of a fresh instance from a Snapshot
// (stateroom.Snapshotter), before Init. An error wraps ErrRestore, and
// stateroom.ErrIncompatibleSnapshot as well when the snapshot is sound but
// not for this module: raw memory of another module, or a guest's own
// snapshot it declares incompatible. Bytes that are damaged are refused
// before the instance changes; an error after it began to change (a guest
// restore that traps, a memory that cannot grow) leaves it broken, and its
// next event faults: the runtime starts the room on another instance.
func (s *service) Restore(b []byte) error {
	if err := s.usable(ErrRestore); err != nil {
		return err
	}
	snap, err := decodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRestore, err)
	}
	if snap.kind == kindGuest {
		return s.guestRestore(snap.guest)
	}
	return s.rawRestore(&snap.raw)
}

// usable returns an error wrapping sentinel if the instance cannot be
// snapshotted or restored.
func (s *service) usable(sentinel error) error {
	switch {
	case s.closed:
		return fmt.Errorf("%w: %w: the instance is closed", sentinel, ErrClosed)
	case s.broken != nil:
		return fmt.Errorf("%w: the instance was stopped halfway: %w", sentinel, s.broken)
	}
	return nil
}

// guestSnapshot calls stateroom_snapshot. ok is false, with no error, when
// the guest has no snapshot of its own (abi.SnapshotNone).
func (s *service) guestSnapshot() (b []byte, ok bool, err error) {
	ctx := s.beginCall()
	defer s.endCall()
	mark := s.out.stderrMark()
	s.stack[0] = 0
	if err := s.exported(&s.snapshotFn, abi.ExportSnapshot).CallWithStack(ctx, s.stack[:]); err != nil {
		s.broken = s.callError(ctx, abi.ExportSnapshot, err)
		return nil, false, fmt.Errorf("%w: %w%s", ErrSnapshot, s.broken, said(s.out.stderrSince(mark)))
	}
	ref := uint32(s.stack[0])
	switch ref {
	case abi.SnapshotNone:
		return nil, false, nil
	case abi.SnapshotFailed:
		return nil, false, fmt.Errorf("%w: the guest's snapshot failed (%s returned -1)%s", ErrSnapshot, abi.ExportSnapshot, said(s.out.stderrSince(mark)))
	}
	pair, inBounds := s.mem.Read(ref, abi.SnapshotRefSize)
	if !inBounds {
		return nil, false, fmt.Errorf("%w: %s returned %#x, which is not the address of an 8-byte (ptr, len) pair in the guest's %d-byte memory; it must return 0, -1 or such an address (internal/abi/ABI.md)", ErrSnapshot, abi.ExportSnapshot, ref, s.mem.Size())
	}
	ptr, n := binary.LittleEndian.Uint32(pair), binary.LittleEndian.Uint32(pair[4:])
	data, inBounds := s.mem.Read(ptr, n)
	if !inBounds {
		return nil, false, fmt.Errorf("%w: %s points at %d bytes at %#x, past the end of the guest's %d-byte memory", ErrSnapshot, abi.ExportSnapshot, n, ptr, s.mem.Size())
	}
	b = appendHeader(make([]byte, 0, len(snapshotMagic)+2+len(kindGuest)+len(data)+checksumSize), kindGuest)
	b = append(b, data...)
	return appendChecksum(b), true, nil
}

// guestRestore hands data to stateroom_restore the way an event is handed
// over: malloc, write, call, free.
func (s *service) guestRestore(data []byte) error {
	m := s.module
	if !m.snapExports {
		return fmt.Errorf("%w: %w: the snapshot is a guest's own (from a build that exports %s), and %s does not export %s to take it", ErrRestore, stateroom.ErrIncompatibleSnapshot, abi.ExportSnapshot, m.name, abi.ExportRestore)
	}
	if limit := uint64(s.maxPages()) * pageSize; uint64(len(data)) > limit {
		return fmt.Errorf("%w: the guest's snapshot is %d bytes, and the instance's memory may hold %d (Options.MemoryLimit); raise the limit to restore it", ErrRestore, len(data), limit)
	}
	n := uint32(len(data))
	ctx := s.beginCall()
	defer s.endCall()
	var ptr uint32
	if n > 0 {
		var err error
		if ptr, err = s.guestMalloc(ctx, n); err != nil {
			s.broken = err
			return fmt.Errorf("%w: %w", ErrRestore, err)
		}
		s.mem.Write(ptr, data) // fits: guestMalloc checked the range
	}
	mark := s.out.stderrMark()
	s.stack[0], s.stack[1] = uint64(ptr), uint64(n)
	if err := s.exported(&s.restoreFn, abi.ExportRestore).CallWithStack(ctx, s.stack[:]); err != nil {
		s.broken = s.callError(ctx, abi.ExportRestore, err)
		return fmt.Errorf("%w: %w%s", ErrRestore, s.broken, said(s.out.stderrSince(mark)))
	}
	status := uint32(s.stack[0])
	stderr := said(s.out.stderrSince(mark))
	if n > 0 {
		if err := s.guestFree(ctx, ptr, n); err != nil {
			s.broken = err
			return fmt.Errorf("%w: %w", ErrRestore, err)
		}
	}
	switch status {
	case abi.RestoreOK:
		return nil
	case abi.RestoreIncompatible:
		return fmt.Errorf("%w: %w: the guest's %s declared the snapshot to be from a build it cannot read (it returned %d)%s", ErrRestore, stateroom.ErrIncompatibleSnapshot, abi.ExportRestore, status, stderr)
	}
	return fmt.Errorf("%w: the guest refused the snapshot (%s returned %d)%s", ErrRestore, abi.ExportRestore, status, stderr)
}

// said introduces what a guest wrote to stderr during a call, for an
// error.
func said(stderr string) string {
	if stderr == "" {
		return ""
	}
	return "; the guest's stderr:\n" + stderr
}

// rawSnapshot takes the instance's memory and mutable globals.
func (s *service) rawSnapshot() ([]byte, error) {
	m := s.module
	if m.rawErr != nil {
		fix := "export " + abi.ExportSnapshot + " and " + abi.ExportRestore + " (internal/abi/ABI.md) to snapshot it"
		if m.snapExports {
			fix = "its " + abi.ExportSnapshot + " returned 0 (in Go: the service does not implement stateroom.Snapshotter); make it snapshot itself"
		}
		return nil, fmt.Errorf("%w: the host cannot take the raw memory of %s: %w; %s", ErrSnapshot, m.name, m.rawErr, fix)
	}
	globals, err := s.mutableGlobals()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	pages := s.pages()
	blocks := s.rawBlocks(pages)
	r := rawSnapshot{
		hash:    m.hash,
		process: processID,
		pages:   pages,
		globals: make([]uint64, len(globals)),
		bufPtr:  s.buf.ptr,
		bufSize: s.buf.size,
		clock:   s.nanotime(),
		wall:    time.Now().UnixNano(),
		clients: s.clientList(),
		chunks:  []uint16{}, // not nil: kind "sparse-memory"
	}
	for i, g := range globals {
		r.globals[i] = g.Get()
	}
	size := 0
	for i, blk := range blocks {
		if blk != nil {
			r.stored = append(r.stored, uint32(i))
			r.chunks = append(r.chunks, s.rawPages[i].chunks)
			size += len(blk)
		}
	}
	b := appendRawHead(make([]byte, 0, 512+4*len(r.stored)+size+len(deflateEnd)), &r)
	for _, i := range r.stored {
		b = append(b, blocks[i]...)
	}
	b = append(b, deflateEnd...)
	return appendChecksum(b), nil
}

// appendRawHead appends the header of r and its body up to the page data:
// of kind "sparse-memory", or "memory" when r.chunks is nil (which only
// tests write, to check that such snapshots are still read).
func appendRawHead(b []byte, r *rawSnapshot) []byte {
	kind := kindSparse
	if r.chunks == nil {
		kind = kindMemory
	}
	b = appendHeader(b, kind)
	b = append(b, r.hash[:]...)
	b = append(b, r.process[:]...)
	b = binary.AppendUvarint(b, uint64(r.pages))
	b = binary.AppendUvarint(b, uint64(len(r.globals)))
	for _, g := range r.globals {
		b = binary.LittleEndian.AppendUint64(b, g)
	}
	b = binary.AppendUvarint(b, uint64(r.bufPtr))
	b = binary.AppendUvarint(b, uint64(r.bufSize))
	b = binary.AppendVarint(b, r.clock)
	b = binary.AppendVarint(b, r.wall)
	b = appendAscending(b, r.clients)
	b = appendAscending(b, r.stored)
	for _, c := range r.chunks {
		b = binary.AppendUvarint(b, uint64(c))
	}
	return b
}

// Raw snapshots of a room that changes little (an idle room saved at every
// hibernation, a busy one at every checkpoint, touching a page or two)
// recompress only the pages that changed since the instance's previous
// raw snapshot. The chunks stored of each page are compressed on their
// own, from a reset DEFLATE writer and ending with a sync flush, so the
// page's block is byte-aligned and refers to nothing before it; the blocks
// of the pages stored, one after the other and then one final empty block,
// are a single valid DEFLATE stream of the chunks in order: the format
// restore reads, whichever host wrote it. The instance keeps, per page, a
// hash of its content at the last snapshot and the block made of it (nil
// when it was the base image's); a page whose hash is unchanged is taken
// as unchanged.
// The hash is a 64-bit maphash with a per-process random seed: content
// that differs yet hashes alike has a chance of 2^-64 per page and
// snapshot, and cannot be aimed at by a guest, which never sees the seed.
// Compressing pages apart costs a little size (no match reaches into the
// page before) and five bytes of flush per page.

// rawPage is what an instance remembers of one page from its last raw
// snapshot.
type rawPage struct {
	block  []byte // its DEFLATE block (empty when no chunk is stored); nil when it was the base image's (or not snapshotted yet)
	sum    uint64 // with a block: the hash of the page it was made of
	chunks uint16 // with a block: the chunks stored (see the format)
}

// pageSeed keys the page hashes; see above.
var pageSeed = maphash.MakeSeed()

// deflateEnd is a final empty DEFLATE block (a stored block of length 0
// with BFINAL set), which ends the stream after the last page's block.
var deflateEnd = []byte{0x01, 0x00, 0x00, 0xff, 0xff}

// rawBlocks returns, for each of the instance's pages, its DEFLATE block,
// or nil for a page equal to the base image's, compressing only the pages
// that changed since the last raw snapshot, and remembers them for the
// next. A page the instance never wrote whose base is pristine
// (snapshot_pristine.go) is the base image's without being read. Another
// page that was the base image's is compared with it again (a comparison
// reads as fast as a hash); only a stored page is hashed. The blocks are
// the instance's: the caller copies them out.
func (s *service) rawBlocks(pages uint32) [][]byte {
	if uint32(len(s.rawPages)) < pages {
		s.rawPages = append(s.rawPages, make([]rawPage, int(pages)-len(s.rawPages))...)
	}
	blocks := make([][]byte, pages)
	clean := s.cleanPages(pages)
	var w *pageflate.Writer
	var buf bytes.Buffer
	var scratch *[pageSize]byte
	for i := range pages {
		p, _ := s.mem.Read(i*pageSize, pageSize)
		rp := &s.rawPages[i]
		if clean.page(i) && s.module.basePristine(i, p) {
			rp.block = nil
			continue
		}
		hashed := rp.block != nil
		var sum uint64
		if hashed {
			if sum = maphash.Bytes(pageSeed, p); sum == rp.sum {
				blocks[i] = rp.block // unchanged since the last snapshot
				continue
			}
		}
		rp.block = nil
		if bytes.Equal(p, s.module.basePage(i)) {
			continue
		}
		if !hashed {
			sum = maphash.Bytes(pageSeed, p)
		}
		rp.sum = sum
		x := p // the page's XOR with the base page
		if base := s.module.basePage(i); &base[0] != &zeroPage[0] {
			if scratch == nil {
				scratch = pageBufs.Get().(*[pageSize]byte)
				defer pageBufs.Put(scratch)
			}
			subtle.XORBytes(scratch[:], p, base)
			x = scratch[:]
		}
		rp.chunks = 0
		for k := range chunksPerPage {
			if !bytes.Equal(x[k*chunkSize:(k+1)*chunkSize], zeroPage[:chunkSize]) {
				rp.chunks |= 1 << k
			}
		}
		rp.block = []byte{}
		if rp.chunks != 0 {
			if w == nil {
				w = getFlateWriter()
				defer putFlateWriter(w)
			}
			buf.Reset()
			w.Reset(&buf)
			for k := range chunksPerPage {
				if rp.chunks&(1<<k) != 0 {
					_, _ = w.Write(x[k*chunkSize : (k+1)*chunkSize]) // a bytes.Buffer does not fail
				}
			}
			_ = w.Flush()
			rp.block = bytes.Clone(buf.Bytes())
		}
		blocks[i] = rp.block
	}
	return blocks
}

// rawRestore writes a raw snapshot into the instance.
func (s *service) rawRestore(r *rawSnapshot) error {
	m := s.module
	if r.hash != m.hash {
		s.logRawIncompatible()
		return fmt.Errorf("%w: %w: the snapshot is the raw memory of another module (sha256 %x…, this one is %x…), which only that module can restore", ErrRestore, stateroom.ErrIncompatibleSnapshot, r.hash[:6], m.hash[:6])
	}
	if m.rawErr != nil { // cannot happen: this module took no raw snapshot
		return fmt.Errorf("%w: %s cannot restore raw memory: %w", ErrRestore, m.name, m.rawErr)
	}
	if len(r.globals) != len(m.globals) {
		return fmt.Errorf("%w: %w: it holds %d mutable globals, the module has %d", ErrRestore, errDamaged, len(r.globals), len(m.globals))
	}
	if limit := s.maxPages(); r.pages > limit {
		return fmt.Errorf("%w: the snapshot holds %d pages of memory (%d MiB), more than the instance may have (%d pages: Options.MemoryLimit, or the module's maximum); raise Options.MemoryLimit to restore it", ErrRestore, r.pages, r.pages>>4, limit)
	}
	globals, err := s.mutableGlobals()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRestore, err)
	}

	// The instance changes from here on; an error leaves it broken.
	if err := s.writeMemory(r); err != nil {
		s.broken = fmt.Errorf("%w: a raw restore failed halfway: %w", ErrRestore, err)
		return s.broken
	}
	for i, g := range globals {
		g.Set(r.globals[i])
	}
	s.buf = eventBuffer{ptr: r.bufPtr, size: r.bufSize}
	s.clients = make(map[stateroom.ClientID]struct{}, len(r.clients))
	for _, id := range r.clients {
		s.clients[id] = struct{}{}
	}
	// The guest's clock goes on from its reading at the snapshot, plus the
	// time since by the wall clock (monotonic clocks of two processes
	// share no origin), never backwards.
	elapsed := max(0, time.Now().UnixNano()-r.wall)
	s.clockOffset = r.clock + elapsed - int64(time.Since(processStart))
	s.rawRestored = true
	s.clientsGone = r.process != processID
	return nil
}

// writeMemory makes the instance's memory the snapshot's: r.pages pages,
// each the stored one, else the base image's, and zeros past the
// snapshot's size should the instance already be bigger. A fresh instance
// is mostly the base image already, but not wholly: it wrote its room id
// and may have read the clock or randomness during instantiation. So a
// page it never wrote whose base is pristine (snapshot_pristine.go) is
// left as it is without being read, and every other page is compared with
// the base and rewritten if it differs.
func (s *service) writeMemory(r *rawSnapshot) error {
	cur := s.pages()
	if r.pages > cur {
		if _, ok := s.mem.Grow(r.pages - cur); !ok {
			return fmt.Errorf("the memory cannot grow from %d to %d pages", cur, r.pages)
		}
	}
	clean := s.cleanPages(min(cur, r.pages))
	fr := getFlateReader(r.data)
	defer flateReaders.Put(fr)
	var scratch *[pageSize]byte
	next := 0
	for i := range max(cur, r.pages) {
		p, _ := s.mem.Read(i*pageSize, pageSize)
		if next < len(r.stored) && r.stored[next] == i {
			pg := storedPage{p: p, chunks: allChunks}
			if r.chunks != nil {
				pg.chunks, pg.base = r.chunks[next], s.module.basePage(i)
				if scratch == nil {
					scratch = pageBufs.Get().(*[pageSize]byte)
					defer pageBufs.Put(scratch)
				}
				pg.scratch = scratch[:]
			}
			// Where the instance holds zeros it never wrote: a page grown
			// just now, or host pages never written of one whose pristine
			// content is zeros.
			switch {
			case i >= cur:
				pg.zeros = func(int) bool { return true }
			case s.module.pristineZero(i):
				pg.zeros = func(k int) bool { return clean.chunk(i, k) }
			default:
				pg.zeros = func(int) bool { return false }
			}
			if err := pg.write(fr); err != nil {
				return fmt.Errorf("%w: page %d: %w", errDamaged, i, err)
			}
			next++
			continue
		}
		if clean.page(i) && s.module.basePristine(i, p) {
			continue
		}
		want := zeroPage[:]
		if i < r.pages {
			want = s.module.basePage(i)
		}
		if i < cur && !bytes.Equal(p, want) { // pages grown just now are zeros already
			copy(p, want)
		}
	}
	var extra [1]byte
	if n, err := fr.Read(extra[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("%w: the page data does not end after %d pages (%v)", errDamaged, len(r.stored), err)
	}
	return nil
}

// pageBufs holds scratch pages, for the XOR of a page with its base.
var pageBufs = sync.Pool{New: func() any { return new([pageSize]byte) }}

// storedPage is a stored page of a snapshot on its way into the instance.
type storedPage struct {
	p       []byte // the instance's page
	chunks  uint16 // the chunks stored
	base    []byte // kind "sparse-memory": the base page the chunks are XORs with; nil for "memory"
	scratch []byte // with base: a page to inflate into
	zeros   func(k int) bool
}

// write writes the page into p: each chunk stored from fr (XORed with the
// base's, for "sparse-memory"), the base's elsewhere. A chunk of the base
// is written only where p may hold something else: where it holds zeros
// already (zeros(k)) and the base's chunk is zeros too, writing them would
// make the kernel give the instance a page of RAM for each 4 KiB, at a
// page fault each (some 3 µs apiece on a virtual machine), and a woken
// room would take more memory than it did before it slept.
func (pg *storedPage) write(fr io.Reader) error {
	for k := range chunksPerPage {
		c := pg.p[k*chunkSize : (k+1)*chunkSize]
		var base []byte
		if pg.base != nil {
			base = pg.base[k*chunkSize : (k+1)*chunkSize]
		}
		baseZero := base == nil || bytes.Equal(base, zeroPage[:chunkSize])
		switch {
		case pg.chunks&(1<<k) != 0 && baseZero:
			if _, err := io.ReadFull(fr, c); err != nil {
				return err
			}
		case pg.chunks&(1<<k) != 0:
			x := pg.scratch[:chunkSize]
			if _, err := io.ReadFull(fr, x); err != nil {
				return err
			}
			subtle.XORBytes(c, x, base)
		case baseZero && pg.zeros(k):
		case !bytes.Equal(c, base):
			copy(c, base)
		}
	}
	return nil
}

// logRawIncompatible logs, once for the room (Restore is called once per
// instance, and the runtime starts the room on another), why its state is
// lost and what keeps it next time.
func (s *service) logRawIncompatible() {
	why := "this module exports no " + abi.ExportSnapshot + " and " + abi.ExportRestore + ", so its state cannot cross builds; export them (the Go SDK does, for a service that implements stateroom.Snapshotter) to keep it"
	if s.module.snapExports {
		why = "this module exports " + abi.ExportSnapshot + " and " + abi.ExportRestore + ", so its state crosses builds from now on if its service snapshots itself (in Go: implements stateroom.Snapshotter)"
	}
	s.logger.Warn("the room's saved state is the raw memory of another build of the module, which only that build can restore; the room starts fresh: "+why, "module", s.module.name)
}

// mutableGlobals returns the instance's mutable globals, in index order.
func (s *service) mutableGlobals() ([]api.MutableGlobal, error) {
	if len(s.globals) == len(s.module.globals) {
		return s.globals, nil
	}
	gs := make([]api.MutableGlobal, len(s.module.globals))
	for i, g := range s.module.globals {
		mg, ok := s.mod.ExportedGlobal(g.name).(api.MutableGlobal)
		if !ok { // cannot happen: exportGlobals exported it
			return nil, fmt.Errorf("the host's export of mutable global %d is missing", g.index)
		}
		gs[i] = mg
	}
	s.globals = gs
	return gs, nil
}

// pages is the size of the instance's memory in pages. Why not
// Memory.Size: it overflows to 0 at 4 GiB.
func (s *service) pages() uint32 {
	p, _ := s.mem.Grow(0)
	return p
}

// clientList returns the clients the guest knows of, ascending.
func (s *service) clientList() []stateroom.ClientID {
	ids := make([]stateroom.ClientID, 0, len(s.clients))
	for id := range s.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// basePage returns page i of the module's base image: zeros past its end.
func (m *Module) basePage(i uint32) []byte {
	if int(i) < len(m.base) && m.base[i] != nil {
		return m.base[i]
	}
	return zeroPage[:]
}

// Pools of DEFLATE coders: a writer holds hundreds of KiB of tables and a
// reader some 40 KiB, too much to make per snapshot. A sync.Pool is
// emptied by garbage collections, which a server making and dropping
// instances has often, and making a writer afresh costs more than
// compressing a room's changed pages (some 250 µs against 150 µs for a
// Rust counter's two); so a couple of writers are kept for good in
// idleWriters, and the pool holds those that more snapshots at once need.
var (
	idleWriters  = make(chan *pageflate.Writer, 2)
	flateWriters = sync.Pool{New: func() any {
		w, _ := pageflate.NewWriter(io.Discard, pageflate.BestSpeed) // the level is valid
		return w
	}}
	flateReaders sync.Pool // of io.ReadCloser that are pageflate.Resetter
)

func getFlateWriter() *pageflate.Writer {
	select {
	case w := <-idleWriters:
		return w
	default:
		return flateWriters.Get().(*pageflate.Writer)
	}
}

func putFlateWriter(w *pageflate.Writer) {
	select {
	case idleWriters <- w:
	default:
		flateWriters.Put(w)
	}
}

func getFlateReader(data []byte) io.ReadCloser {
	if fr, ok := flateReaders.Get().(io.ReadCloser); ok {
		if err := fr.(pageflate.Resetter).Reset(bytes.NewReader(data), nil); err == nil {
			return fr
		}
	}
	return pageflate.NewReader(bytes.NewReader(data))
}

func appendHeader(b []byte, kind string) []byte {
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersion)
	b = binary.AppendUvarint(b, uint64(len(kind)))
	return append(b, kind...)
}

func appendChecksum(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// appendAscending appends the count of vs, ascending, and each as its
// difference from the one before.
func appendAscending[T ~uint32](b []byte, vs []T) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	var prev T
	for _, v := range vs {
		b = binary.AppendUvarint(b, uint64(v-prev))
		prev = v
	}
	return b
}

// snapshot is a decoded snapshot.
type snapshot struct {
	kind  string
	guest []byte // kindGuest: the guest's bytes
	raw   rawSnapshot
}

// rawSnapshot is the body of a "memory" snapshot.
type rawSnapshot struct {
	hash            [sha256.Size]byte
	process         [8]byte
	pages           uint32
	globals         []uint64
	bufPtr, bufSize uint32
	clock, wall     int64
	clients         []stateroom.ClientID
	stored          []uint32 // page indices, ascending, each below pages
	chunks          []uint16 // by stored page, its chunks stored; nil (kind "memory") for whole pages
	data            []byte   // DEFLATE of the stored chunks
}

// maxPages is the most pages a 32-bit memory has.
const maxPages = 1 << 16

// decodeSnapshot decodes b and checks its structure: the checksum, the
// header, and for raw memory every count and index against what is left
// of b and against the memory's size, so that a bad snapshot never makes
// it allocate much or index out of range. What it returns aliases b.
func decodeSnapshot(b []byte) (snapshot, error) {
	var snap snapshot
	if len(b) < len(snapshotMagic)+2+checksumSize {
		return snap, fmt.Errorf("%w: %d bytes is too short", errDamaged, len(b))
	}
	if string(b[:len(snapshotMagic)]) != snapshotMagic {
		return snap, fmt.Errorf("%w: it does not start as a wasmhost snapshot (magic %q)", errDamaged, b[:len(snapshotMagic)])
	}
	body, sum := b[:len(b)-checksumSize], binary.LittleEndian.Uint32(b[len(b)-checksumSize:])
	if crc32.ChecksumIEEE(body) != sum {
		return snap, fmt.Errorf("%w: checksum mismatch", errDamaged)
	}
	if v := body[len(snapshotMagic)]; v != snapshotVersion {
		return snap, fmt.Errorf("%w: format version %d; this host reads version %d", errDamaged, v, snapshotVersion)
	}
	d := snapReader{b: body, off: len(snapshotMagic) + 1}
	snap.kind = string(d.bytes("kind", d.uvarint("kind length", maxKindLen)))
	if d.err != nil {
		return snap, d.err
	}
	switch snap.kind {
	case kindGuest:
		snap.guest = body[d.off:]
		return snap, nil
	case kindSparse, kindMemory:
	default:
		return snap, fmt.Errorf("%w: unknown kind %q (from a newer host?)", errDamaged, snap.kind)
	}

	r := &snap.raw
	copy(r.hash[:], d.bytes("module hash", sha256.Size))
	copy(r.process[:], d.bytes("process id", uint64(len(r.process))))
	r.pages = uint32(d.uvarint("memory pages", maxPages))
	if n := d.uvarint("global count", uint64(d.left()/8)); d.err == nil {
		r.globals = make([]uint64, n)
		for i := range r.globals {
			r.globals[i] = binary.LittleEndian.Uint64(d.bytes("global", 8))
		}
	}
	r.bufPtr = uint32(d.uvarint("event buffer address", math.MaxUint32))
	r.bufSize = uint32(d.uvarint("event buffer size", math.MaxUint32))
	r.clock = d.varint("clock")
	r.wall = d.varint("wall clock")
	r.clients = readAscending[stateroom.ClientID](&d, "clients", math.MaxUint32+1)
	r.stored = readAscending[uint32](&d, "stored pages", uint64(r.pages))
	if snap.kind == kindSparse && d.err == nil {
		r.chunks = make([]uint16, len(r.stored)) // as many as bytes were read for stored
		for i := range r.chunks {
			r.chunks[i] = uint16(d.uvarint("stored chunks", allChunks))
		}
	}
	if d.err != nil {
		return snap, d.err
	}
	if r.bufSize > 0 && (r.bufPtr == 0 || uint64(r.bufPtr)+uint64(r.bufSize) > uint64(r.pages)*pageSize) {
		return snap, fmt.Errorf("%w: event buffer of %d bytes at %#x outside a memory of %d pages", errDamaged, r.bufSize, r.bufPtr, r.pages)
	}
	r.data = body[d.off:]
	return snap, nil
}

// readAscending reads what appendAscending wrote: values below below,
// strictly ascending. The count is checked against the bytes left (each
// value takes one at least) before anything is allocated.
func readAscending[T ~uint32](d *snapReader, what string, below uint64) []T {
	n := d.uvarint(what+" count", uint64(d.left()))
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]T, n)
	var prev uint64
	for i := range out {
		delta := d.uvarint(what, below)
		if d.err != nil {
			return nil
		}
		v := prev + delta
		if (i > 0 && delta == 0) || v >= below {
			d.fail("%s: %d after %d is not ascending, or not below %d", what, v, prev, below)
			return nil
		}
		out[i], prev = T(v), v
	}
	return out
}

// snapReader reads the fields of a snapshot; the first error sticks and
// later reads return zero values.
type snapReader struct {
	b   []byte
	off int
	err error
}

func (d *snapReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at offset %d: %s", errDamaged, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *snapReader) left() int { return len(d.b) - d.off }

// uvarint reads an unsigned varint of at most limit.
func (d *snapReader) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("%s: bad varint", what)
		return 0
	}
	if v > limit {
		d.fail("%s: %d is above %d", what, v, limit)
		return 0
	}
	d.off += n
	return v
}

func (d *snapReader) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("%s: bad varint", what)
		return 0
	}
	d.off += n
	return v
}

// bytes reads n bytes; on error it returns a zero slice of length n, so
// that callers may index it.
func (d *snapReader) bytes(what string, n uint64) []byte {
	if d.err == nil && n > uint64(d.left()) {
		d.fail("%s: %d bytes wanted, %d left", what, n, d.left())
	}
	if d.err != nil {
		return make([]byte, min(n, 8))
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}
