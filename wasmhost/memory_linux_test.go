package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// heapOptions are testOptions with wazero's default memory, the old path.
func heapOptions() Options {
	o := testOptions()
	o.HeapMemory = true
	return o
}

// mapped reports whether the host page at p is mapped in this process:
// msync fails with ENOMEM on an address that is not.
func mapped(p unsafe.Pointer) bool {
	return unix.Msync(unsafe.Slice((*byte)(p), hostPageSize), unix.MS_ASYNC) == nil
}

// memoryBase is the address of the first byte of the instance's memory.
func memoryBase(t testing.TB, s *service) unsafe.Pointer {
	t.Helper()
	b, ok := s.mem.Read(0, 1)
	if !ok {
		t.Fatal("the instance has no memory")
	}
	return unsafe.Pointer(&b[0])
}

// TestMappedMemoryMatchesHeap checks that every test guest that loads
// starts with the same memory, byte for byte, whether wazero copies its
// data segments into a Go slice or the host maps the shared image, with or
// without the pages a start writes pre-faulted, and that the guests with
// constant data segments do get the image.
func TestMappedMemoryMatchesHeap(t *testing.T) {
	guests, err := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	if err != nil || len(guests) == 0 {
		t.Fatalf("no guests in testdata (%v)", err)
	}
	guests = append(guests, filepath.Join("testdata", "rustcounter", "counter.wasm")) // what rustc makes
	ctx := context.Background()
	copied, shared, prefaulted := 0, 0, 0
	for _, path := range guests {
		name, _ := filepath.Rel("testdata", strings.TrimSuffix(path, ".wasm"))
		heap, err := Load(ctx, path, heapOptions())
		if err != nil {
			continue // the guests of Load's error tests
		}
		t.Run(name, func(t *testing.T) {
			defer heap.Close(ctx)
			mapped := loadGuest(t, name, testOptions())
			if heap.image != nil {
				t.Error("the module with HeapMemory has an image")
			}
			switch {
			case mapped.image == nil:
			case mapped.image.file != nil:
				shared++
			default:
				copied++
			}
			a, b := newService(t, heap), newService(t, mapped)
			if b.linear == nil {
				t.Fatal("the instance's memory is not mapped")
			}
			if !bytes.Equal(memoryBytes(t, a), memoryBytes(t, b)) {
				t.Error("the mapped memory differs from wazero's after instantiation")
			}
			// b taught the module what a start writes (with the probe):
			// the next instance has it pre-faulted (prefaultStart), and
			// must start with the same bytes all the same.
			c := newService(t, mapped)
			if c.linear.prefaulted {
				prefaulted++
			}
			if !bytes.Equal(memoryBytes(t, a), memoryBytes(t, c)) {
				t.Errorf("the mapped memory of an instance pre-faulted %v differs from wazero's after instantiation", c.linear.prefaulted)
			}
		})
	}
	if copied == 0 || shared == 0 {
		t.Errorf("%d test guests got a copied image and %d a shared one; want some of each", copied, shared)
	}
	if prefaulted == 0 && pagemap() != nil {
		t.Error("no test guest's instance was pre-faulted")
	}
}

// TestMappedMemoryGrowsInPlace checks that memory.grow lengthens the same
// mapping (nothing copied, the base address unchanged) and that the
// growth is the guest's alone: another instance of the module, and the
// image, are untouched.
func TestMappedMemoryGrowsInPlace(t *testing.T) {
	for _, guest := range []string{"counter", "bigdata"} { // a copied image and a shared one
		t.Run(guest, func(t *testing.T) { testGrowsInPlace(t, guest) })
	}
}

func testGrowsInPlace(t *testing.T, guest string) {
	m := loadGuest(t, guest, testOptions())
	if m.image == nil {
		t.Fatalf("%s.wasm got no image", guest)
	}
	room := newRoom()
	s, other := newService(t, m), newService(t, m)
	before := memoryBytes(t, other)
	base := memoryBase(t, s)
	pages := s.pages()
	for range 3 {
		command(s, room, "g") // grow one page, write into it
		command(s, room, "i") // increment the counter in memory
	}
	if s.pages() != pages+3 {
		t.Fatalf("%d pages after growing 3, want %d", s.pages(), pages+3)
	}
	if memoryBase(t, s) != base {
		t.Error("the memory moved when it grew")
	}
	if !bytes.Equal(memoryBytes(t, other), before) {
		t.Error("growing and writing one instance changed another")
	}
	if fresh := newService(t, m); !bytes.Equal(memoryBytes(t, fresh), before) {
		t.Error("a new instance does not start from the module's image")
	}
}

// TestMappedMemoryReturned checks that an instance's memory is unmapped
// when both wazero and the service let go of it, in either order: a closed
// Module must not unmap the memory of a service that may still be running
// or being snapshotted.
func TestMappedMemoryReturned(t *testing.T) {
	ctx := context.Background()
	m, err := Load(ctx, filepath.Join("testdata", "bigdata.wasm"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	first, second := newService(t, m), newService(t, m)
	p1, p2 := memoryBase(t, first), memoryBase(t, second)

	_ = first.Close() // wazero's Free and the service's release together
	if mapped(p1) {
		t.Error("a closed instance's memory is still mapped")
	}
	if err := m.Close(ctx); err != nil { // wazero frees the second instance
		t.Fatal(err)
	}
	if !mapped(p2) {
		t.Fatal("closing the Module unmapped a live service's memory")
	}
	_ = memoryBytes(t, second) // still readable: a snapshot at shutdown may do this
	_ = second.Close()
	if mapped(p2) {
		t.Error("the memory is still mapped after the service closed too")
	}
}

// TestReserveFails checks that a refused reservation refuses the room with
// ErrMemory, whose text names the memory limit, and harms nothing else.
func TestReserveFails(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	live := newService(t, m)
	saved := reserve
	reserve = func(uintptr) (unsafe.Pointer, error) { return nil, syscall.ENOMEM }
	_, err := m.NewService("refused")
	reserve = saved
	if !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "wasm memory limit reached") {
		t.Fatalf("NewService with the reservation refused: %v, want ErrMemory", err)
	}
	command(live, newRoom(), "i") // the running room goes on
	if _, err := m.NewService("after"); err != nil {
		t.Fatalf("NewService once the system has memory again: %v", err)
	}
}

// TestHeapMemoryOption checks that HeapMemory keeps wazero's memory and
// the module's data segments.
func TestHeapMemoryOption(t *testing.T) {
	m := loadGuest(t, "counter", heapOptions())
	s := newService(t, m)
	if m.image != nil || s.linear != nil {
		t.Errorf("HeapMemory: image %v, mapped memory %v; want neither", m.image != nil, s.linear != nil)
	}
}

// TestImageFaultAround: reading one page of the shared image maps that
// page only into the instance, not the 64 KiB around it that the kernel's
// fault-around maps by default, so that VmRSS counts what a room read. The
// same read with fault-around kept (the path before) maps more, which
// shows the measurement can fail.
func TestImageFaultAround(t *testing.T) {
	m := loadGuest(t, "bigdata", testOptions())
	if m.image == nil || m.image.file == nil {
		t.Fatal("bigdata.wasm's image is not shared through a file")
	}
	if err := m.image.file.faultAroundErr(); err != nil {
		t.Skipf("userfaultfd is not available here, so image mappings keep fault-around: %v", err)
	}
	// bigdata.wat has data in every 4 KiB page from 8 to 31, in the
	// page's second half; the instance's start touches none of pages 16
	// to 31.
	const page = 20
	grown := func(keep bool) int64 {
		defer KeepFaultAround(keep)()
		s, err := m.instantiate("fault-around")
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		base := uintptr(memoryBase(t, s))
		before := mappingRss(t, base)
		if b, ok := s.mem.Read(page*4096+2048, 1); !ok || b[0] == 0 {
			t.Fatalf("page %d of the image reads %v, %v; want its data", page, b, ok)
		}
		return mappingRss(t, base) - before
	}
	if got := grown(false); got != int64(hostPageSize) {
		t.Errorf("reading one page of the image added %d KiB of VmRSS, want %d KiB", got>>10, hostPageSize>>10)
	}
	if got := grown(true); got <= int64(hostPageSize) {
		t.Errorf("with fault-around kept, reading one page added %d KiB; the test no longer sees fault-around", got>>10)
	}
}

// mappingRss returns the Rss of this process's mapping that starts at addr.
func mappingRss(t testing.TB, addr uintptr) int64 { return smapsBytes(t, addr, "Rss") }

// smapsBytes returns field (Rss, Anonymous, ...) of this process's mapping
// that starts at addr, from /proc/self/smaps, in bytes.
func smapsBytes(t testing.TB, addr uintptr, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	head := strconv.FormatUint(uint64(addr), 16) + "-"
	in := false
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 5 && strings.Contains(f[0], "-") {
			in = strings.HasPrefix(line, head)
			continue
		}
		if rest, ok := strings.CutPrefix(line, field+":"); ok && in {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("smaps: %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping starts at %#x", addr)
	return 0
}
