package wasmhost

import (
	"errors"
	"fmt"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// The host's raw-memory snapshot (see snapshot.go) must read and write
// every mutable global of an instance: a Rust module's __stack_pointer, an
// allocator's heap top, Go's SP. wazero reaches globals through exports
// only (api.Module.ExportedGlobal), and linkers export none of these. So
// before compiling, the host adds an export for each mutable global the
// module defines, under a name no linker makes (globalExportPrefix plus
// the global's index). An extra export changes nothing the guest can see.
// The patch is wasmpatch.ExportGlobals, the same one build-time
// pre-initialisation uses (internal/preinit), under a prefix of our own.
//
// Why patch rather than reach into wazero's module instance with
// reflection: the patch depends on the binary format, which is stable, and
// not on wazero's internals, which are not.

// globalExportPrefix starts the names of the exports exportGlobals adds.
const globalExportPrefix = "stateroom:global:"

// globalExport is a mutable global of a module, exported under name by
// exportGlobals.
type globalExport struct {
	name  string
	index uint32 // in the module's global index space
	typ   byte   // value type, as the binary format encodes it
}

// errNoPatch is wrapped by the errors of exportGlobals.
var errNoPatch = errors.New("cannot export the module's mutable globals")

// exportGlobals returns the module bin with an export added for every
// mutable global it defines, and those globals in index order. bin is left
// alone, and returned as it is when it has no mutable global. Malformed
// input, or a construct the parser does not know, is an error wrapping
// errNoPatch, never a panic: the caller then compiles bin as it is, and
// wazero says what is wrong with it, if anything.
func exportGlobals(bin []byte) ([]byte, []globalExport, error) {
	out, gs, err := wasmpatch.ExportGlobals(bin, globalExportPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errNoPatch, err)
	}
	if err := wasmpatch.CheckNumeric(gs); err != nil {
		// A v128 or a reference: wazero's Get and Set carry 64 bits, and
		// a reference is a host pointer.
		return nil, nil, fmt.Errorf("%w: %w", errNoPatch, err)
	}
	globals := make([]globalExport, len(gs))
	for i, g := range gs {
		globals[i] = globalExport{name: g.Export, index: g.Index, typ: g.Type}
	}
	return out, globals, nil
}
