package store

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Record is one room's stored snapshot.
type Record struct {
	// Room is the id of the room the record belongs to.
	Room string
	// Data is the snapshot, opaque to the store (the room runtime's
	// envelope). It is the caller's own copy: the store keeps none of it.
	Data []byte
	// Revision is assigned by the store on every Save. It is never 0 and
	// strictly increases for a room, also across a Delete or a SetAside and a
	// re-creation: a revision is never reused for a room, so a writer holding
	// a stale one can never win a compare-and-set. Revisions are not
	// contiguous (the stores draw them from one counter for all rooms).
	Revision uint64
	// Saved is when the record was saved, in UTC.
	Saved time.Time
}

// Info describes a stored record without its data.
type Info struct {
	// Room is the id of the room.
	Room string
	// Revision is the record's revision, or 0 if the record is damaged so
	// that even its header cannot be read (Load then fails with ErrCorrupt).
	Revision uint64
	// Size is the length of the record's data in bytes.
	Size int
	// Saved is when the record was saved, in UTC (zero if unreadable).
	Saved time.Time
}

// SetAsideInfo describes a record that SetAside moved out of its room's way.
type SetAsideInfo struct {
	// Name identifies the set-aside record for LoadSetAside. It is unique in
	// the store and reads ROOM@TIME#N, TIME being when it was set aside (UTC,
	// RFC 3339 with nanoseconds). Treat it as opaque: the room id itself may
	// contain '@' or '#'.
	Name string
	// Reason is why it was set aside, as given to SetAside.
	Reason string
	// At is when it was set aside, in UTC.
	At time.Time
	// Info describes the record as it was when it was set aside.
	Info
}

// Errors of the stores. They are wrapped with the room, the path and what to
// do: test for them with errors.Is.
var (
	// ErrNotFound is wrapped by the error of Load, SetAside and LoadSetAside
	// when there is no such record. For Load it is the normal answer for a
	// room that was never saved: start it afresh.
	ErrNotFound = errors.New("no record")

	// ErrConflict is wrapped by the error of Save and SetAside when the
	// stored revision is not the one expected: another writer saved the room
	// since the caller loaded it. The error is a *ConflictError, which says
	// which revision is stored.
	ErrConflict = errors.New("revision conflict")

	// ErrCorrupt is wrapped by the error of Load (and of Save) when the stored
	// record is damaged (its checksum or header does not verify). The store
	// never repairs or drops a record by itself: set it aside with SetAside
	// (expect 0) so the room can start afresh and an operator can inspect it.
	ErrCorrupt = errors.New("corrupt record")

	// ErrClosed is wrapped by the error of every method called after Close.
	ErrClosed = errors.New("store is closed")

	// ErrLocked is wrapped by the error of Open when another process holds
	// the state file.
	ErrLocked = errors.New("state file is locked by another process")

	// ErrInvalid is wrapped by the error of a method given a bad argument
	// (an empty or overlong room id, data too large).
	ErrInvalid = errors.New("invalid argument")
)

// ConflictError is the error of a compare-and-set that lost. It wraps
// ErrConflict.
type ConflictError struct {
	// Op is the method that lost: "save" or "set aside".
	Op string
	// Room is the room's id.
	Room string
	// Expected is the revision the caller expected (0: no record).
	Expected uint64
	// Stored is the revision stored (0: there is no record).
	Stored uint64
}

// Error says which revision was expected and which is stored.
func (e *ConflictError) Error() string {
	var stored, expected string
	if e.Stored == 0 {
		stored = "there is no record"
	} else {
		stored = fmt.Sprintf("revision %d is stored", e.Stored)
	}
	if e.Expected == 0 {
		expected = "no record"
	} else {
		expected = fmt.Sprintf("revision %d", e.Expected)
	}
	return fmt.Sprintf("store: %s room %q: %s, not %s as expected: another writer changed the room since it was loaded; load it again before saving, and if this process no longer owns the room, stop writing to it (%v)",
		e.Op, e.Room, stored, expected, ErrConflict)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Store keeps one record (the latest snapshot) per room. Implementations are
// safe for concurrent use. Every method returns an error wrapping ErrClosed
// after Close, and checks ctx before it starts (returning ctx.Err() wrapped);
// a method that returns the context's error has changed nothing.
type Store interface {
	// Load returns the room's record, or an error wrapping ErrNotFound if
	// there is none, or ErrCorrupt if it is damaged.
	Load(ctx context.Context, room string) (Record, error)

	// Save stores data as the room's record if the stored revision is
	// expect (0: no record may exist) and returns the new revision.
	// Otherwise it changes nothing and returns a *ConflictError (wrapping
	// ErrConflict) that says which revision is stored. This compare-and-set
	// is the fencing that ownership relies on: a stale owner can never
	// overwrite a newer state. The store copies data; the caller may reuse
	// it once Save returns. When Save returns nil the record is durable (for
	// stores that persist).
	Save(ctx context.Context, room string, data []byte, expect uint64) (uint64, error)

	// Delete removes the room's record; it returns nil if there is none.
	// The next Save must expect 0 and gets a revision higher than any the
	// room had. It is meant for the admin API: it is not fenced.
	Delete(ctx context.Context, room string) error

	// SetAside moves the room's record out of its way, keeping it (the
	// store never deletes it) under a new name that includes the room and
	// the time, with reason, so that a damaged snapshot does not block the
	// room and an operator can inspect it. The room then has no record: the
	// next Save expects 0. If expect is not 0, the record is set aside only
	// if its revision is expect (else a *ConflictError), so that a stale
	// owner cannot push a newer state aside; expect 0 sets aside whatever is
	// stored (for operators, and for a record Load reports as ErrCorrupt).
	// Without a record it returns an error wrapping ErrNotFound (expect 0)
	// or a *ConflictError (expect not 0). Reasons longer than
	// MaxReasonLength bytes are cut.
	SetAside(ctx context.Context, room string, expect uint64, reason string) (SetAsideInfo, error)

	// ListSetAside describes the set-aside records, sorted by room, then
	// time, then name.
	ListSetAside(ctx context.Context) ([]SetAsideInfo, error)

	// LoadSetAside returns the record set aside under name (see
	// SetAsideInfo.Name), or an error wrapping ErrNotFound, or ErrCorrupt
	// if the record was damaged when it was set aside.
	LoadSetAside(ctx context.Context, name string) (Record, error)

	// List describes the stored records, sorted by room id (byte order).
	List(ctx context.Context) ([]Info, error)

	// Close releases the store. It waits for the calls in progress to
	// return; later calls fail with ErrClosed. Closing again returns nil.
	Close() error
}

// Limits on the arguments of a Store.
const (
	// MaxRoomLength is the longest room id a store accepts, in bytes. The
	// server's own limit (server.Options.MaxRoomIDLength, 256 by default)
	// is normally lower.
	MaxRoomLength = 4096

	// MaxReasonLength is the longest reason SetAside keeps, in bytes.
	MaxReasonLength = 4096

	// MaxDataLength is the largest snapshot a store accepts, in bytes
	// (bbolt's limit on a value, less the record header). Snapshots should
	// be far smaller: each Save writes the whole of it.
	MaxDataLength = (1<<31 - 2) - 21 // 21: recordHeaderLen
)

// checkRoom returns an error wrapping ErrInvalid if room cannot be a room id.
func checkRoom(room string) error {
	switch {
	case room == "":
		return fmt.Errorf("store: empty room id: pass the id of the room (%w)", ErrInvalid)
	case len(room) > MaxRoomLength:
		return fmt.Errorf("store: room id is %d bytes long; a store accepts at most %d (%w)", len(room), MaxRoomLength, ErrInvalid)
	case !utf8.ValidString(room):
		return fmt.Errorf("store: room id %q is not valid UTF-8; room ids are text (%w)", room, ErrInvalid)
	}
	return nil
}

// checkData returns an error wrapping ErrInvalid if data is too large.
func checkData(room string, n int) error {
	if n > MaxDataLength {
		return fmt.Errorf("store: the snapshot of room %q is %d bytes; a store accepts at most %d: keep less state in the room (%w)", room, n, MaxDataLength, ErrInvalid)
	}
	return nil
}

// checkName returns an error wrapping ErrInvalid if name cannot be the name
// of a set-aside record.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("store: empty set-aside name: pass a SetAsideInfo.Name from ListSetAside (%w)", ErrInvalid)
	}
	if len(name) > MaxRoomLength+64 {
		return fmt.Errorf("store: set-aside name is %d bytes long, longer than any the store makes: pass a SetAsideInfo.Name from ListSetAside (%w)", len(name), ErrInvalid)
	}
	return nil
}

// cutReason cuts reason to MaxReasonLength bytes at a rune boundary.
func cutReason(reason string) string {
	if len(reason) <= MaxReasonLength {
		return reason
	}
	cut := MaxReasonLength
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// asideName is the name of a record set aside from room at time at, n being
// a number unique in the store.
func asideName(room string, at time.Time, n uint64) string {
	return fmt.Sprintf("%s@%s#%d", room, at.UTC().Format(asideTimeLayout), n)
}

const asideTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// ctxErr checks ctx before an operation starts.
func ctxErr(ctx context.Context, op, room string) error {
	if err := ctx.Err(); err != nil {
		if room == "" {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		return fmt.Errorf("store: %s room %q: %w", op, room, err)
	}
	return nil
}

func closedErr(op string) error {
	return fmt.Errorf("store: %s: %w: it was closed (the server is probably shutting down); open it again to use it", op, ErrClosed)
}

func notFoundErr(room string) error {
	return fmt.Errorf("store: room %q: %w", room, ErrNotFound)
}

func asideNotFoundErr(name string) error {
	return fmt.Errorf("store: set-aside record %q: %w; ListSetAside lists the names", name, ErrNotFound)
}
