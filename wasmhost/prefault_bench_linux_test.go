package wasmhost

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkImageFaults measures what one page of a mapped image costs an
// instance, by how the page comes in: written straight away (a
// copy-on-write fault on a page not mapped yet), read and then written (a
// read fault, then a copy-on-write fault that replaces a present entry and
// flushes other cores' TLBs), or populated for writing by
// madvise(MADV_POPULATE_WRITE) as prefaultStart does, with the mapping
// registered with the image's userfaultfd (uffd, what instances get) or
// not (plain, the kernel's default, fault-around included), so that the
// cost of the registration on faults shows:
//
//	go test -run XXX -bench ImageFaults ./wasmhost/
//
// ns/page is per page of the 64 touched, mapping and unmapping included
// ("none" is that alone, also divided by 64).
func BenchmarkImageFaults(b *testing.B) {
	const pages = 64
	img := make([]byte, 4*pages*hostPageSize)
	for i := range img {
		img[i] = byte(i | 1)
	}
	f, err := newImageFile(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.close()
	touch := map[string]func(mem []byte){
		"none": func([]byte) {}, // the mapping, registering and unmapping alone
		"write": func(mem []byte) {
			for i := range pages {
				mem[4*i*hostPageSize] = 1 // every fourth page: no fault-around of writes to help or hinder
			}
		},
		"read-write": func(mem []byte) {
			var sum byte
			for i := range pages {
				sum += mem[4*i*hostPageSize]
			}
			for i := range pages {
				mem[4*i*hostPageSize] = sum
			}
		},
		"populate-write": func(mem []byte) {
			for i := range pages {
				if err := unix.Madvise(mem[4*i*hostPageSize:(4*i+1)*hostPageSize], unix.MADV_POPULATE_WRITE); err != nil {
					b.Fatal(err)
				}
			}
		},
	}
	for _, uffd := range []bool{true, false} {
		if uffd && f.uffd < 0 {
			continue
		}
		for _, how := range []string{"none", "write", "read-write", "populate-write"} {
			name := "plain/" + how
			if uffd {
				name = "uffd/" + how
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					p, err := unix.MmapPtr(f.fd, 0, nil, uintptr(len(img)), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
					if err != nil {
						b.Fatal(err)
					}
					mem := unsafe.Slice((*byte)(p), len(img))
					if uffd {
						f.limitFaultAround(mem)
					}
					touch[how](mem)
					_ = unix.MunmapPtr(p, uintptr(len(img)))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pages), "ns/page")
			})
		}
	}
}
