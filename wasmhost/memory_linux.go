package wasmhost

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// canMapMemory: this platform has the mapped memory of memory.go.
const canMapMemory = true

// hostPageSize is the unit of mappings.
var hostPageSize = os.Getpagesize()

// keepFaultAround leaves the kernel's fault-around on for image mappings
// (see limitFaultAround); only benchmarks set it, to measure against.
var keepFaultAround = false

// imageFileName names the image files: /proc/PID/maps shows each
// instance's image mapping as /memfd:stateroom-wasm-image (deleted).
const imageFileName = "stateroom-wasm-image"

// imageFile is a memoryImage's memfd. Instances map it while Close may be
// closing it, so the descriptors are read under mu: a closed descriptor
// number can be reused by any file the process opens next.
type imageFile struct {
	mu sync.RWMutex
	fd int // -1 once closed

	// uffd is a userfaultfd each instance's mapping of the image is
	// registered with, only to turn the kernel's fault-around off for it
	// (see limitFaultAround); -1 without one, and uffdErr says why.
	uffd    int
	uffdErr error

	// prefault is what a room's start writes, learnt once (see
	// prefaultStart).
	prefault prefaultState
}

// newImageFile writes b into a new memfd, leaving out the host pages that
// are all zeros (holes read as zeros and take no memory), and seals it
// against any change, so that no bug of ours can alter what instances see.
func newImageFile(b []byte) (*imageFile, error) {
	fd, err := unix.MemfdCreate(imageFileName, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	err = unix.Ftruncate(fd, int64(len(b)))
	for off := 0; off < len(b) && err == nil; off += hostPageSize {
		if p := b[off:min(off+hostPageSize, len(b))]; !isZero(p) {
			err = pwriteFull(fd, p, int64(off))
		}
	}
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL)
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	f := &imageFile{fd: fd}
	f.uffd, f.uffdErr = newFaultAroundFD()
	return f, nil
}

// pwriteFull writes all of p at off.
func pwriteFull(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, off)
		if err != nil {
			return fmt.Errorf("writing the image: %w", err)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (f *imageFile) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd >= 0 {
		_ = unix.Close(f.fd)
		f.fd = -1
	}
	if f.uffd >= 0 {
		_ = unix.Close(f.uffd) // unregisters the mappings: they stay, with fault-around back
		f.uffd = -1
	}
}

// faultAroundErr says why the image's mappings keep the kernel's
// fault-around, or nil (also for a small image, which has no file).
func (f *imageFile) faultAroundErr() error {
	if f == nil {
		return nil
	}
	return f.uffdErr
}

// Fault-around. On a read fault in a file mapping the kernel maps not only
// the page read but every page of the file around it that is in memory,
// 64 KiB aligned (mm/memory.c, do_fault_around; fault_around_bytes), to save
// faults. For the image that costs nothing in RAM (the pages are the
// file's, in memory once) but VmRSS counts each of them in every instance
// that mapped it, and a Go guest reads pages scattered across its image:
// VmRSS per room of the pre-initialised counter was 840 KiB with
// fault-around and 230 KiB without, at the same Pss (BenchmarkInstances,
// docs/PERFORMANCE.md). VmRSS is what operators, container limits and the
// OOM killer's reports look at, so it should say what a room holds.
//
// No madvise turns fault-around off for one mapping; registering the
// mapping with a userfaultfd does (should_fault_around), and in the
// asynchronous write-protect mode (Linux 6.7) registering does nothing
// else: no page is ever write-protected, so no fault is ever reported or
// waited for, and copy-on-write works as before. One descriptor per
// module, user-mode faults only (allowed without privilege whatever
// vm.unprivileged_userfaultfd says). Where userfaultfd is refused (an
// older kernel, a seccomp profile such as Docker's default) the image is
// mapped as before and Load logs it once: only the VmRSS accounting
// differs.

// userfaultfd's ABI (include/uapi/linux/userfaultfd.h); x/sys/unix has
// only the system call number. The ioctl numbers are _IOWR(0xAA, nr,
// size), the same on every architecture Linux's generic ioctl encoding
// covers (amd64, arm64).
const (
	uffdUserModeOnly     = 1       // userfaultfd flag
	uffdAPI              = 0xAA    // uffdio_api.api
	uffdFeatureWPShmem   = 1 << 12 // UFFD_FEATURE_WP_HUGETLBFS_SHMEM
	uffdFeatureWPAsync   = 1 << 15 // UFFD_FEATURE_WP_ASYNC
	uffdioAPI            = 0xC018AA3F
	uffdioRegister       = 0xC020AA00
	uffdioRegisterModeWP = 1 << 1
)

// newFaultAroundFD opens the userfaultfd of an image, or says why not.
func newFaultAroundFD() (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if errno != 0 {
		return -1, fmt.Errorf("userfaultfd: %w", errno)
	}
	api := struct{ api, features, ioctls uint64 }{api: uffdAPI, features: uffdFeatureWPShmem | uffdFeatureWPAsync}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uffdioAPI, uintptr(unsafe.Pointer(&api))); errno != 0 {
		_ = unix.Close(int(fd))
		return -1, fmt.Errorf("userfaultfd's asynchronous write-protect mode (Linux 6.7 or later): %w", errno)
	}
	return int(fd), nil
}

// limitFaultAround registers dst, an instance's mapping of the image,
// with f.uffd, so that the kernel maps only the pages the guest touches;
// f.mu is held. A failure is ignored: the mapping works the same, its
// VmRSS is only larger (TestImageFaultAround checks that registering
// works where userfaultfd is available).
func (f *imageFile) limitFaultAround(dst []byte) {
	if f.uffd < 0 || len(dst) == 0 {
		return
	}
	reg := struct{ start, len, mode, ioctls uint64 }{
		start: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(dst)))),
		len:   uint64(len(dst)),
		mode:  uffdioRegisterModeWP,
	}
	_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(f.uffd), uffdioRegister, uintptr(unsafe.Pointer(&reg)))
}

// errImageClosed: the module was closed while an instance was being made.
var errImageClosed = errors.New("the module's memory image is closed")

// linearMemory is one instance's memory: a reservation of the memory
// limit, with the module's image mapped copy-on-write (or, small, copied)
// at its start. It is the experimental.MemoryAllocator of the instance's
// instantiation and the experimental.LinearMemory wazero then holds.
//
// Two owners hold it: wazero, from Allocate until Free (when the instance
// is closed), and the service, until it is closed or its instantiation
// failed. The mapping goes when both let go. Why not unmap on Free alone:
// wazero frees from the goroutine that closes the instance, and
// Module.Close may close it while a guest without a budget still spins in
// its own code (Close waits for such a call only closeGrace: inflight.go),
// or before the room snapshots its instance one last time; an unmapped
// page there is a crash of the whole process, not a fault of one room.
// The service lets go only from the room's goroutine, between calls.
type linearMemory struct {
	mem    []byte // the whole reservation
	owners atomic.Int32
	unmap  sync.Once

	// prefaulted: pages were populated before the guest's first call
	// (prefaultStart), so the instance's written pages say nothing of
	// what a start writes and it must not teach it.
	prefaulted bool
}

// reserve maps size bytes of address space, committed page by page as they
// are touched. A variable so that tests can make it fail.
var reserve = func(size uintptr) (unsafe.Pointer, error) {
	return unix.MmapPtr(-1, 0, nil, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

// newLinearMemory reserves an instance's memory, or returns nil on a
// platform or with options that keep wazero's default. The error of a
// failed reservation says what to change.
func (m *Module) newLinearMemory() (*linearMemory, error) {
	if m.set.heapMemory {
		return nil, nil
	}
	size := uintptr(m.set.memoryPages) * pageSize
	p, err := reserve(size)
	if err != nil {
		return nil, fmt.Errorf("%w: reserving %d MiB of address space for the instance's memory (Options.MemoryLimit): %w; lower the limit, raise the process's address-space or mapping limits (ulimit -v, vm.max_map_count, vm.overcommit_memory), or set Options.HeapMemory", ErrMemory, size>>20, err)
	}
	l := &linearMemory{mem: unsafe.Slice((*byte)(p), size)}
	l.owners.Store(1)
	if img := m.image; img != nil && img.file == nil {
		for _, pg := range img.pages {
			copy(l.mem[pg.offset:], pg.data)
		}
	} else if img != nil {
		if err := img.mapInto(l.mem[:img.size]); err != nil {
			l.release()
			return nil, fmt.Errorf("%w: mapping the module's memory image: %w", ErrMemory, err)
		}
		l.prefaulted = img.file.prefaultStart(l.mem)
	}
	return l, nil
}

// mapInto maps the image copy-on-write over dst, the start of a
// reservation.
func (img *memoryImage) mapInto(dst []byte) error {
	img.file.mu.RLock()
	defer img.file.mu.RUnlock()
	if img.file.fd < 0 {
		return errImageClosed
	}
	_, err := unix.MmapPtr(img.file.fd, 0, unsafe.Pointer(unsafe.SliceData(dst)), uintptr(len(dst)), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	if err == nil && !keepFaultAround {
		img.file.limitFaultAround(dst)
	}
	return err
}

// Allocate hands the reservation to wazero (experimental.MemoryAllocator).
// wazero asks once per instance (one memory: multi-memory is off), with
// max at most the runtime's memory limit, which is the reservation's size.
func (l *linearMemory) Allocate(_, _ uint64) experimental.LinearMemory {
	l.owners.Add(1)
	return l
}

// Reallocate returns the first size bytes of the reservation
// (experimental.LinearMemory): the same memory, longer, so nothing moves
// and nothing is copied. Past the reservation it returns nil, which fails
// the guest's memory.grow; wazero checks the limit before it asks, so that
// does not happen.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(l.mem)) {
		return nil
	}
	return l.mem[:size:size]
}

// Free is wazero letting go (experimental.LinearMemory).
func (l *linearMemory) Free() { l.release() }

// release lets go of one owner's hold; the last unmaps.
func (l *linearMemory) release() {
	if l != nil && l.owners.Add(-1) == 0 {
		l.discard()
	}
}

// discard unmaps the reservation now, whoever holds it: for an instance
// that never came to be (wazero keeps nothing of a failed instantiation
// and never frees its memory).
func (l *linearMemory) discard() {
	if l == nil {
		return
	}
	l.unmap.Do(func() {
		_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(l.mem)), uintptr(len(l.mem))) // fails only for a bad range, which this is not
	})
}

// Pre-faulting what a room's start writes (issue 14). A Go guest's start
// (writeRoomID's malloc and free, the runtime reseeding its random
// generators through random_get, the ABI check) touches some 28 pages of
// its memory, and faulted them in one at a time: 38 faults per room, 10 of
// them a write to a page the guest had just read, where the kernel
// replaces a present page table entry and flushes the other cores' TLBs
// with an interprocessor interrupt. That was about 45% of an
// instantiation's CPU. The host learns once per module which pages a start
// writes and, in each new instance, populates them for writing right after
// mapping, before the guest's first call, with one
// madvise(MADV_POPULATE_WRITE) per run of pages (Linux 5.14): a few system
// calls, and no page read and then copied.
//
// What is learnt: the pages that both the probe instance of Load and the
// first room's instance wrote during their start (instantiateWith ends
// with learnStart). Why their intersection: a page pre-faulted and then
// not written costs the room 4 KiB of private memory that it would not
// have had, for nothing, so the set must hold only pages that every start
// writes. What varies from one start to the next is the room id (its
// length picks the size of writeRoomID's allocation), the entropy
// random_get hands out and the clocks; the probe runs with a fixed seed,
// fixed clocks and the id "(probe)", the first room with the process's
// entropy, the real clocks and its own id, so a page both wrote is one
// that the start writes whatever these are. A page that some starts write
// and others do not (a longer id spilling into the next page) is left
// out, and a room that writes it faults it in as before: the set is only
// ever a hint, never needed for correctness, since a pre-faulted page
// holds exactly what the mapping would have shown (the image's bytes, or
// zeros outside the image). A page counts as written only if pagemap
// shows it present, anonymous and exclusively mapped (bit 56): a page the
// start only read outside the image maps the shared zero page, which is
// not exclusive, and is not worth a private copy.
//
// Populating for reading the pages a start only reads (MADV_POPULATE_READ)
// was measured too (prefaultMode.reads, benchmark case
// mapped-prefaultreads) and gained nothing, so it is off: see
// docs/PERFORMANCE.md.
//
// Where the kernel knows no MADV_POPULATE_WRITE (before 5.14: EINVAL) or
// refuses it, the module stops pre-faulting, silently: the guest faults
// its pages in itself, as before. A small image (copied into the
// instance), Options.HeapMemory and other platforms have no image file
// and never pre-fault.

// prefaultState is what an imageFile learnt of its rooms' starts.
type prefaultState struct {
	mu    sync.Mutex
	probe []bool // host pages the probe's start wrote; nil before the probe (or when pagemap says nothing)
	// runs are the ranges to populate for writing in each new instance
	// (and reads, those to populate for reading when prefaultMode.reads
	// is set); nil until learnt, then replaced only by noPrefaultRuns
	// when the kernel refuses.
	runs  atomic.Pointer[prefaultRuns]
	learn atomic.Bool // a room's instance is learning (only one does)
}

// prefaultRuns are byte ranges of an instance's memory, from its start.
type prefaultRuns struct {
	writes, reads []pageRun
}

// pageRun is a range of host pages, in bytes from the memory's start.
type pageRun struct{ off, n uintptr }

// noPrefaultRuns: nothing to pre-fault, learnt or given up.
var noPrefaultRuns = &prefaultRuns{}

// prefaultMode says whether new instances are pre-faulted; tests and
// benchmarks change it (PrefaultMode), never while instances are made.
var prefaultMode = struct {
	off   bool // learn, but never populate: the path before
	reads bool // populate the pages a start only reads too (measured: no gain)
}{}

// madvise is unix.Madvise, a variable so that tests can make it fail as a
// kernel without MADV_POPULATE_WRITE does.
var madvise = unix.Madvise

// prefaultStart populates, in mem (a new instance's reservation with the
// image mapped), the pages a start writes, once they are learnt, and
// reports whether it populated any.
func (f *imageFile) prefaultStart(mem []byte) bool {
	runs := f.prefault.runs.Load()
	if runs == nil || prefaultMode.off {
		return false
	}
	done := false
	populate := func(rs []pageRun, advice int) bool {
		for _, r := range rs {
			if r.off+r.n > uintptr(len(mem)) {
				continue // cannot happen: runs come from an instance's memory, within the same limit
			}
			if err := madvise(mem[r.off:r.off+r.n], advice); err != nil {
				if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
					f.prefault.runs.Store(noPrefaultRuns) // this kernel cannot: stop trying for the module
				}
				// Anything else (out of memory, a signal) leaves the rest
				// for the guest to fault in, which reports what it must.
				return false
			}
			done = true
		}
		return true
	}
	if populate(runs.writes, unix.MADV_POPULATE_WRITE) && prefaultMode.reads {
		populate(runs.reads, unix.MADV_POPULATE_READ)
	}
	return done
}

// learnStart records what the start of s, just finished, wrote: for the
// probe instance of Load, the candidate set; for the first room's
// instance that was not pre-faulted, the set itself (see above).
func (f *imageFile) learnStart(s *service, probe bool) {
	st := &f.prefault
	if s.linear == nil || (!probe && (s.linear.prefaulted || st.runs.Load() != nil)) {
		return
	}
	if !probe && !st.learn.CompareAndSwap(false, true) {
		return // another room is learning
	}
	written, read := s.startPages()
	if probe {
		st.mu.Lock()
		st.probe = written
		st.mu.Unlock()
		return
	}
	st.mu.Lock()
	probeWrote := st.probe
	st.mu.Unlock()
	runs := &prefaultRuns{}
	for i := range written {
		written[i] = written[i] && i < len(probeWrote) && probeWrote[i]
	}
	runs.writes = pageRuns(written)
	runs.reads = pageRuns(read)
	st.runs.Store(runs)
}

// pageRuns returns the runs of true in pages (host pages) as byte ranges.
func pageRuns(pages []bool) []pageRun {
	var runs []pageRun
	for i := 0; i < len(pages); {
		if !pages[i] {
			i++
			continue
		}
		j := i
		for j < len(pages) && pages[j] {
			j++
		}
		runs = append(runs, pageRun{off: uintptr(i * hostPageSize), n: uintptr((j - i) * hostPageSize)})
		i = j
	}
	return runs
}
