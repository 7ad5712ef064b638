package wasmhost

import (
	"os"
	"testing"
)

// TestCleanPages checks what the kernel says of an instance's pages
// (dirty_linux.go): a host page the instance wrote is never clean; pages
// it never touched are; and pages of a mapped image file that it only
// read stay clean (they are the file's own, unchanged).
func TestCleanPages(t *testing.T) {
	if _, err := os.Stat("/proc/self/pagemap"); err != nil {
		t.Skipf("no pagemap on this system (%v): raw snapshots compare every page", err)
	}
	for _, guest := range []string{"counter", "bigdata"} { // a copied image and a mapped one
		t.Run(guest, func(t *testing.T) {
			m := loadGuest(t, guest, testOptions())
			s := newService(t, m)
			first := s.pages()
			if _, ok := s.mem.Grow(2); !ok {
				t.Fatal("cannot grow the memory by 2 pages")
			}
			before := s.cleanPages(first + 2)
			if before.per == 0 {
				t.Fatal("cleanPages knows nothing of an instance's memory on Linux")
			}
			if !before.page(first) || !before.page(first+1) {
				t.Fatalf("pages grown just now are not clean: %v", before.clean[int(first)*before.per:])
			}
			s.mem.WriteByte((first+1)*pageSize+3*chunkSize+9, 1)
			after := s.cleanPages(first + 2)
			if after.page(first+1) || after.chunk(first+1, 3) {
				t.Error("a host page the instance wrote is clean")
			}
			if !after.page(first) {
				t.Error("a page the instance never touched is not clean")
			}
			written := 3 * chunkSize / hostPageSize // the host page written
			for k := range chunksPerPage {
				if k*chunkSize/hostPageSize != written && !after.chunk(first+1, k) {
					t.Errorf("chunk %d of page %d, never touched, is not clean", k, first+1)
				}
			}
			if m.image == nil || m.image.file == nil {
				return
			}
			// bigdata's image file covers both its pages; the guest wrote
			// only in page 0 (its counter, heap and room id).
			if !before.page(1) {
				t.Fatal("page 1 of the mapped image, never written, is not clean")
			}
			p, _ := s.mem.Read(pageSize, pageSize)
			sum := 0
			for _, c := range p { // read every byte of it
				sum += int(c)
			}
			if !s.cleanPages(2).page(1) {
				t.Errorf("page 1 of the mapped image is not clean after a read (its bytes sum to %d)", sum)
			}
		})
	}
}
