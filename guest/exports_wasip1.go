//go:build wasip1

package guest

import (
	"runtime"
	"strconv"
	"unsafe"

	"github.com/stateroom-go/stateroom"
)

func init() { current.send = hostSend }

// stateroomSend hands the host one encoded MessageFromProcess; the host
// copies the bytes before returning.
//
//go:wasmimport env stateroom_send
func stateroomSend(ptr unsafe.Pointer, size uint32)

// randomGet is WASI's random_get, which the host backs with its entropy
// source; reseed fills the pre-initialised generators with it. Imported
// here rather than reached through crypto/rand, which would add its
// dependencies to every module. The address is a plain i32, as in the
// ABI: the ranges are not Go pointers.
//
//go:wasmimport wasi_snapshot_preview1 random_get
func randomGet(addr, size uint32) uint32

// reseeded is set once the ranges have been refilled in this instance.
var reseeded bool

// reseed refills the ranges of preinitValues with random bytes from the
// host, once per instance, before anything else the instance runs: every
// export calls it first. A module that was not pre-initialised has no
// ranges, and this costs one branch per call. It traps if the host cannot
// provide the bytes: a room must not run with the generators every room
// shares.
func reseed() {
	if reseeded {
		return
	}
	reseeded = true
	v := &preinitValues
	for _, r := range v.ranges[:min(v.count, maxReseedRanges)] {
		if errno := randomGet(r.addr, r.size); errno != 0 {
			panic("guest: WASI random_get failed (errno " + strconv.FormatUint(uint64(errno), 10) + "); cannot reseed the pre-initialised random generators")
		}
	}
}

func hostSend(b []byte) {
	if len(b) == 0 {
		return
	}
	stateroomSend(unsafe.Pointer(&b[0]), uint32(len(b)))
}

//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_recv
func stateroomRecv(ptr unsafe.Pointer, size uint32) {
	reseed()
	current.recv(unsafe.Slice((*byte)(ptr), size))
	// Let other goroutines run (the service's own, the GC's background
	// workers): nothing else yields in a single-threaded guest (see the
	// package documentation).
	runtime.Gosched()
}

//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_malloc
func stateroomMalloc(size uint32) unsafe.Pointer {
	reseed()
	return unsafe.Pointer(current.malloc(size))
}

//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_free
func stateroomFree(ptr unsafe.Pointer, size uint32) {
	reseed()
	current.free(uintptr(ptr), size)
}

// stateroomAPIVersion is the fallback for hosts reading an unpatched module
// (built with plain go build): it returns the version the
// STATEROOM_API_VERSION global would point at.
//
//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_api_version
func stateroomAPIVersion() int32 { return abiValues.version }

// stateroomAPIProtocol is the fallback for STATEROOM_API_PROTOCOL.
//
//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_api_protocol
func stateroomAPIProtocol() int32 { return abiValues.protocol }

// stateroomSnapshot is the ABI's optional stateroom_snapshot (see
// internal/abi/ABI.md): 0 when the service is not a stateroom.Snapshotter
// (the host then snapshots raw memory), -1 when its Snapshot failed, else
// the address of the (ptr, len) pair of its snapshot, valid until the
// host's next call into the guest.
//
//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_snapshot
func stateroomSnapshot() uint32 {
	reseed()
	data, ok, result := current.snapshot()
	if !ok {
		return result
	}
	return uint32(uintptr(unsafe.Pointer(current.hold(data))))
}

// stateroomRestore is the ABI's optional stateroom_restore: the service's
// Restore of the bytes the host wrote at ptr, before the Init event.
//
//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_restore
func stateroomRestore(ptr unsafe.Pointer, size uint32) uint32 {
	reseed()
	return current.restore(uintptr(ptr), size)
}

// stateroomMember is the ABI's optional stateroom_member (the members
// extension): one client already connected to the room as this instance
// starts, named before Init and handed to the service in its
// InitEvent.Clients.
//
//lint:ignore U1000 called by the host: exported with go:wasmexport
//go:wasmexport stateroom_member
func stateroomMember(client uint32) {
	reseed()
	current.member(stateroom.ClientID(client))
}
