package wasmhost

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
