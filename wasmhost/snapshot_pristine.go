package wasmhost

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// Pristine pages. A page of an instance's memory that the instance never
// wrote (cleanPages, dirty_linux.go) holds its pristine content: what the
// host's mapping starts as, the image file's page where the module's image
// is mapped (memory.go), zeros everywhere else (a small image is copied
// into the instance, which makes its pages written ones). Such a page
// equals the module's base image (Module.base, taken from a probe
// instance after instantiation) exactly when the base page is the
// pristine one, which depends on the page alone, not on the instance: so
// a raw snapshot stores, and a restore rewrites, none of an instance's
// clean pages whose base is pristine, without reading them. Outside the
// image file that is a base page of zeros; inside, it is found out by
// comparing the first clean page met with the base page, once for the
// module's life (pristineMemo).

// pristineMemo keeps, per page of a module's mapped image file, whether
// its base page is the image's own (see above).
type pristineMemo struct {
	once  sync.Once
	pages []atomic.Uint32 // pristineUnknown, pristineEqual or pristineDiffers
}

const (
	pristineUnknown = iota
	pristineEqual
	pristineDiffers
)

// basePristine reports whether page i of the module's base image is the
// pristine content of page i. p is page i of an instance that has not
// written it: what it holds is that content, read only when the answer is
// not known yet.
func (m *Module) basePristine(i uint32, p []byte) bool {
	if m.pristineZero(i) {
		return int(i) >= len(m.base) || m.base[i] == nil
	}
	img := m.image
	memo := &m.pristine
	memo.once.Do(func() { memo.pages = make([]atomic.Uint32, img.size/pageSize) })
	switch memo.pages[i].Load() {
	case pristineEqual:
		return true
	case pristineDiffers:
		return false
	}
	equal := bytes.Equal(p, m.basePage(i))
	state := uint32(pristineDiffers)
	if equal {
		state = pristineEqual
	}
	memo.pages[i].Store(state) // racing callers read the same content, so store the same answer
	return equal
}

// pristineZero reports whether the pristine content of page i is zeros:
// it lies outside the image file (see above).
func (m *Module) pristineZero(i uint32) bool {
	img := m.image
	return img == nil || img.file == nil || uint64(i)*pageSize >= img.size
}

// cleanMap is what cleanPages found: per host page of an instance's
// memory, whether the instance never wrote it. Its zero value knows
// nothing, and says every page was written.
type cleanMap struct {
	clean []bool // by host page
	per   int    // host pages per wasm page
}

// page reports whether the instance wrote none of page i.
func (c cleanMap) page(i uint32) bool {
	if int(i) >= len(c.clean)/max(c.per, 1) {
		return false
	}
	for _, ok := range c.clean[int(i)*c.per : int(i+1)*c.per] {
		if !ok {
			return false
		}
	}
	return true
}

// chunk reports whether the instance never wrote chunk k (of the snapshot
// format's, 4 KiB) of page i: the host page it lies in.
func (c cleanMap) chunk(i uint32, k int) bool {
	if c.per == 0 {
		return false
	}
	j := int(i)*c.per + k*c.per/chunksPerPage
	return j < len(c.clean) && c.clean[j]
}
