package wasmhost

// BasePages returns m's base image page by page (nil for a page of zeros)
// and why raw snapshots are unavailable, for tests in package
// wasmhost_test (which can build Go guests: gobuildtest imports wasmhost).
func BasePages(m *Module) ([][]byte, error) { return m.base, m.rawErr }
