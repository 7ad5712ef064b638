package guest

// preinitValues is how this package and internal/preinit, which runs a
// module's start-up at build time (see the package documentation,
// "Pre-initialisation"), talk: preinit finds the variable in the
// initialised memory by its head, reads registered to tell whether a
// service was registered during start-up, and fills in the ranges of
// memory that hold random generator state seeded during start-up. At the
// module's first call, reseed (exports_wasip1.go) overwrites those ranges with fresh bytes
// from the host's WASI random_get, so that every instance of a
// pre-initialised module draws its own random numbers.
//
// Keep the layout in step with internal/preinit (its tests build a module
// from this package and fail if they drift apart). The head is a marker
// no other data holds; the tail lets preinit check the layout between.
var preinitValues = struct {
	head       [16]byte
	registered uint32 // 1 once Register has run
	count      uint32 // ranges in use
	ranges     [maxReseedRanges]struct{ addr, size uint32 }
	tail       [4]byte
}{
	head: [16]byte{'\xff', 's', 't', 'a', 't', 'e', 'r', 'o', 'o', 'm', '-', 'p', 'r', 'e', '\xff', '\x01'},
	tail: [4]byte{'\xfe', 'e', 'n', 'd'},
}

// maxReseedRanges bounds the ranges preinit may hand over: the Go
// runtime has two generators (its global one and the one of its only
// thread), and a service may keep a few of its own.
const maxReseedRanges = 32
