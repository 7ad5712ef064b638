package wasmhost

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/stateroom-go/stateroom/internal/abi"
)

// Names under which a guest declares its ABI version and protocol.
const (
	versionGlobal  = "STATEROOM_API_VERSION"
	protocolGlobal = "STATEROOM_API_PROTOCOL"
	// Fallback for Go guests that were not patched: Go cannot export
	// globals, so these functions return the values themselves.
	versionFunc  = "stateroom_api_version"
	protocolFunc = "stateroom_api_protocol"
)

// checkABI checks that an instance declares ABI version 1, protocol 0.
func (s *service) checkABI(ctx context.Context) error {
	for _, c := range [...]struct {
		what       string
		global, fn string
		want       uint32
	}{
		{"ABI version", versionGlobal, versionFunc, abi.Version},
		{"ABI protocol", protocolGlobal, protocolFunc, abi.Protocol},
	} {
		got, err := s.abiValue(ctx, c.global, c.fn)
		if err != nil {
			return err
		}
		if got != c.want {
			return fmt.Errorf("%w: %s declares %s %d, this host runs %d; rebuild it with an SDK for Stateroom ABI version %d, protocol %d", ErrVersion, s.module.name, c.what, got, c.want, abi.Version, abi.Protocol)
		}
	}
	return nil
}

// abiValue reads one declared value: the i32 at the address the global
// holds (upstream's layout), or else the result of the fallback function.
func (s *service) abiValue(ctx context.Context, global, fn string) (uint32, error) {
	if g := s.mod.ExportedGlobal(global); g != nil {
		if g.Type() != api.ValueTypeI32 {
			return 0, fmt.Errorf("%w: %s: global %s is %s, want i32 (the address of a little-endian i32)", ErrExport, s.module.name, global, api.ValueTypeName(g.Type()))
		}
		addr := uint32(g.Get())
		v, ok := s.mem.ReadUint32Le(addr)
		if !ok {
			return 0, fmt.Errorf("%w: %s: global %s holds address %#x, outside the %d-byte memory; it must point at a little-endian i32", ErrExport, s.module.name, global, addr, s.mem.Size())
		}
		return v, nil
	}
	if f := s.mod.ExportedFunction(fn); f != nil { // signature checked at load
		s.stack[0] = 0
		if err := f.CallWithStack(ctx, s.stack[:]); err != nil {
			return 0, s.callError(ctx, fn, err)
		}
		return uint32(s.stack[0]), nil
	}
	return 0, fmt.Errorf("%w: %s exports neither the global %s (i32: the address of a little-endian i32) nor the function %s() -> i32; build it with `stateroom build` (Go) or the stateroom-wasm crate (Rust)", ErrVersion, s.module.name, global, fn)
}
