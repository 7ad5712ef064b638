package store

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is a Store that keeps records in this process only: they are lost
// when it exits. It is meant for tests and for servers without persistence.
// It is safe for concurrent use and copies data in and out.
type Memory struct {
	mu      sync.Mutex
	closed  bool
	last    uint64 // the last revision (or set-aside number) handed out
	records map[string]memRecord
	aside   map[string]memAside
}

type memRecord struct {
	data     []byte
	revision uint64
	saved    time.Time
}

type memAside struct {
	info SetAsideInfo
	rec  memRecord
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{records: map[string]memRecord{}, aside: map[string]memAside{}}
}

// Load returns the room's record, or an error wrapping ErrNotFound.
func (m *Memory) Load(ctx context.Context, room string) (Record, error) {
	if err := checkRoom(room); err != nil {
		return Record{}, err
	}
	if err := ctxErr(ctx, "load", room); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Record{}, closedErr("load")
	}
	r, ok := m.records[room]
	if !ok {
		return Record{}, notFoundErr(room)
	}
	return Record{Room: room, Data: clone(r.data), Revision: r.revision, Saved: r.saved}, nil
}

// Save stores data as the room's record if the stored revision is expect
// (0: no record may exist) and returns the new revision; otherwise it
// returns a *ConflictError. See Store.
func (m *Memory) Save(ctx context.Context, room string, data []byte, expect uint64) (uint64, error) {
	if err := checkRoom(room); err != nil {
		return 0, err
	}
	if err := checkData(room, len(data)); err != nil {
		return 0, err
	}
	if err := ctxErr(ctx, "save", room); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, closedErr("save")
	}
	r := m.records[room]
	if r.revision != expect {
		return 0, &ConflictError{Op: "save", Room: room, Expected: expect, Stored: r.revision}
	}
	m.last = max(m.last, r.revision) + 1
	m.records[room] = memRecord{data: clone(data), revision: m.last, saved: now()}
	return m.last, nil
}

// Delete removes the room's record; it returns nil if there is none.
func (m *Memory) Delete(ctx context.Context, room string) error {
	if err := checkRoom(room); err != nil {
		return err
	}
	if err := ctxErr(ctx, "delete", room); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return closedErr("delete")
	}
	delete(m.records, room)
	return nil
}

// SetAside moves the room's record out of its way, under a new name. See
// Store.
func (m *Memory) SetAside(ctx context.Context, room string, expect uint64, reason string) (SetAsideInfo, error) {
	if err := checkRoom(room); err != nil {
		return SetAsideInfo{}, err
	}
	if err := ctxErr(ctx, "set aside", room); err != nil {
		return SetAsideInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return SetAsideInfo{}, closedErr("set aside")
	}
	r, ok := m.records[room]
	if !ok {
		if expect != 0 {
			return SetAsideInfo{}, &ConflictError{Op: "set aside", Room: room, Expected: expect}
		}
		return SetAsideInfo{}, notFoundErr(room)
	}
	if expect != 0 && r.revision != expect {
		return SetAsideInfo{}, &ConflictError{Op: "set aside", Room: room, Expected: expect, Stored: r.revision}
	}
	m.last++
	at := now()
	info := SetAsideInfo{
		Name:   asideName(room, at, m.last),
		Reason: cutReason(reason),
		At:     at,
		Info:   Info{Room: room, Revision: r.revision, Size: len(r.data), Saved: r.saved},
	}
	m.aside[info.Name] = memAside{info: info, rec: r}
	delete(m.records, room)
	return info, nil
}

// ListSetAside describes the set-aside records, sorted by room, then time,
// then name.
func (m *Memory) ListSetAside(ctx context.Context) ([]SetAsideInfo, error) {
	if err := ctxErr(ctx, "list set-aside records", ""); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, closedErr("list set-aside records")
	}
	out := make([]SetAsideInfo, 0, len(m.aside))
	for _, a := range m.aside {
		out = append(out, a.info)
	}
	sortAside(out)
	return out, nil
}

// LoadSetAside returns the record set aside under name.
func (m *Memory) LoadSetAside(ctx context.Context, name string) (Record, error) {
	if err := checkName(name); err != nil {
		return Record{}, err
	}
	if err := ctxErr(ctx, "load set-aside record", ""); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Record{}, closedErr("load set-aside record")
	}
	a, ok := m.aside[name]
	if !ok {
		return Record{}, asideNotFoundErr(name)
	}
	return Record{Room: a.info.Room, Data: clone(a.rec.data), Revision: a.rec.revision, Saved: a.rec.saved}, nil
}

// List describes the stored records, sorted by room id.
func (m *Memory) List(ctx context.Context) ([]Info, error) {
	if err := ctxErr(ctx, "list", ""); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, closedErr("list")
	}
	out := make([]Info, 0, len(m.records))
	for room, r := range m.records {
		out = append(out, Info{Room: room, Revision: r.revision, Size: len(r.data), Saved: r.saved})
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.Room, b.Room) })
	return out, nil
}

// Close drops the records; later calls fail with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.records, m.aside = nil, nil
	return nil
}

// clone copies b into a new non-nil slice.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// now is the time a record is saved or set aside: UTC, without the
// monotonic clock reading, as a persisted time would come back.
func now() time.Time { return time.Now().UTC().Round(0) }

func sortAside(s []SetAsideInfo) {
	slices.SortFunc(s, func(a, b SetAsideInfo) int {
		return cmp.Or(cmp.Compare(a.Room, b.Room), a.At.Compare(b.At), cmp.Compare(a.Name, b.Name))
	})
}
