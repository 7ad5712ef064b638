//go:build !linux

package wasmhost

// cleanPages: on this platform the host does not map instance memory
// itself (memory_other.go), so nothing tells which pages an instance
// wrote; raw snapshots and restores compare every page with the base
// image.
func (s *service) cleanPages(uint32) cleanMap { return cleanMap{} }
