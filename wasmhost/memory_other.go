//go:build !linux

package wasmhost

import (
	"errors"

	"github.com/tetratelabs/wazero/experimental"
)

// canMapMemory: this platform keeps wazero's default memory (see
// memory.go); only Linux has memfd, which the shared image needs.
const canMapMemory = false

// imageFile is never made on this platform.
type imageFile struct{}

func newImageFile([]byte) (*imageFile, error) {
	return nil, errors.ErrUnsupported
}

func (*imageFile) close() {}

func (*imageFile) faultAroundErr() error { return nil }

// learnStart: nothing is pre-faulted on this platform (memory_linux.go).
func (*imageFile) learnStart(*service, bool) {}

// linearMemory is never made on this platform: newLinearMemory returns nil
// and the methods are no-ops on nil.
type linearMemory struct{}

func (m *Module) newLinearMemory() (*linearMemory, error) { return nil, nil }

func (*linearMemory) Allocate(_, _ uint64) experimental.LinearMemory { return nil }

func (l *linearMemory) release() {}

func (l *linearMemory) discard() {}
