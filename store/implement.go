package store

import (
	"context"
	"time"
)

// The functions below are for implementations of Store outside this package
// (the cluster's JetStream store): every store refuses the same arguments
// with the same errors, which the conformance suite (package storetest)
// checks, so they live here once.

// CheckRoom returns an error wrapping ErrInvalid if room cannot be a room id
// (empty, longer than MaxRoomLength, not UTF-8).
func CheckRoom(room string) error { return checkRoom(room) }

// CheckData returns an error wrapping ErrInvalid if a snapshot of n bytes is
// larger than MaxDataLength.
func CheckData(room string, n int) error { return checkData(room, n) }

// CheckSetAsideName returns an error wrapping ErrInvalid if name cannot be
// the name of a set-aside record.
func CheckSetAsideName(name string) error { return checkName(name) }

// CheckContext returns ctx's error, wrapped with the operation and the room
// (room may be empty), if ctx is done: a method checks it before it starts.
func CheckContext(ctx context.Context, op, room string) error { return ctxErr(ctx, op, room) }

// CutReason cuts a set-aside reason to MaxReasonLength bytes at a rune
// boundary.
func CutReason(reason string) string { return cutReason(reason) }

// ClosedError is the error of a method called after Close; it wraps
// ErrClosed.
func ClosedError(op string) error { return closedErr(op) }

// NotFoundError is the error of Load for a room without a record; it wraps
// ErrNotFound.
func NotFoundError(room string) error { return notFoundErr(room) }

// SetAsideNotFoundError is the error of LoadSetAside for an unknown name; it
// wraps ErrNotFound.
func SetAsideNotFoundError(name string) error { return asideNotFoundErr(name) }

// SetAsideName is the name of a record set aside from room at time at, n
// being a number unique in the store (see SetAsideInfo.Name).
func SetAsideName(room string, at time.Time, n uint64) string { return asideName(room, at, n) }
