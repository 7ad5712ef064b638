// Package wasmpatch adds what the Go toolchain cannot emit to a WebAssembly
// module built from a Go service with package guest: the two exported i32
// globals of the Stateroom ABI, STATEROOM_API_VERSION and
// STATEROOM_API_PROTOCOL, whose values are the addresses of the
// little-endian i32s 1 and 0 in the module's memory.
//
// Go's //go:wasmexport works on functions only. The guest package keeps the
// two values in a variable framed by a marker; [Patch] finds that variable
// in the module's data segments, appends two immutable globals holding the
// addresses to the global section and exports them.
//
// Patch also makes the module initialize itself: a -buildmode=c-shared
// module is a reactor whose exported _initialize must run before anything
// else, which upstream Stateroom's host never calls. Patch makes _initialize
// the module's start function and drops its export, so any host (ours,
// upstream's, a bare runtime) gets a ready module from instantiation.
//
// Data segments are merged in one place, [MergeData]: finely at build time
// for a small file ([FreezeMergeGap]), coarsely by a host at load time for
// a runtime that copies each segment into each instance ([MaxMergeGap]).
//
// The parser reads only the sections it needs (import, global, export, start,
// data) and copies every other section byte for byte. Malformed input is an
// error, never a panic.
package wasmpatch
