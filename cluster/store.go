package cluster

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateroom-go/stateroom/store"
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// Bucket is the name of the JetStream key-value bucket that holds the
	// records (created if missing). Default "stateroom_rooms".
	Bucket string

	// Replicas is how many servers keep a copy of each record: 1 to 5, 3
	// for a cluster of three or more nodes. Default 1.
	Replicas int

	// Timeout bounds each request to JetStream. A request in flight is not
	// cut short by the caller's context (whose end is checked before the
	// request starts), so that an error wrapping the context's error always
	// means nothing was changed. Default 5 s.
	Timeout time.Duration
}

// DefaultBucket is the bucket of StoreOptions.Bucket's default.
const DefaultBucket = "stateroom_rooms"

// Store is a store.Store that keeps room records in a JetStream key-value
// bucket, replicated over the servers of a NATS cluster. A record's revision
// is the bucket's sequence number of its last write: one counter for all
// rooms that never goes back, so revisions are never reused, and every Save
// is a compare-and-set on it (JetStream's expected last sequence per
// subject).
//
// Records are keyed by the room id in base64url (r.ID), or by its SHA-256
// when the id is longer than 192 bytes (r.h.HASH), with the id also in the
// value. Set-aside records are kept under a.N. Every value carries a CRC-32C,
// so a damaged record is reported as store.ErrCorrupt rather than handed to
// a room.
type Store struct {
	kv       jetstream.KeyValue
	timeout  time.Duration
	maxValue int

	mu     sync.RWMutex // held for reading by calls in progress; Close takes it for writing
	closed bool
}

var _ store.Store = (*Store)(nil)

// NewStore opens the bucket of o through js (creating it if missing; an
// existing bucket keeps its replicas) and returns a Store on it. js's connection stays the caller's:
// Close does not close it.
func NewStore(ctx context.Context, js jetstream.JetStream, o StoreOptions) (*Store, error) {
	o.Bucket = cmp.Or(o.Bucket, DefaultBucket)
	o.Replicas = cmp.Or(o.Replicas, 1)
	o.Timeout = cmp.Or(o.Timeout, 5*time.Second)
	if o.Replicas < 1 || o.Replicas > 5 {
		return nil, fmt.Errorf("cluster: StoreOptions.Replicas is %d; JetStream keeps 1 to 5 copies (use 3 for a cluster of three or more nodes)", o.Replicas)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("cluster: StoreOptions.Timeout is %v; use 0 for the default (5s) or a positive duration", o.Timeout)
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "Stateroom room snapshots",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, err
	}
	// A room loads the record a takeover has just saved again: a replica
	// read could still hand it the revision before, and its first save
	// would then conflict.
	if kv, err = leaderReads(ctx, js, kv); err != nil {
		return nil, err
	}
	// A value must fit in one NATS message.
	maxValue := int(js.Conn().MaxPayload()) - 1024
	return &Store{kv: kv, timeout: o.Timeout, maxValue: maxValue}, nil
}

// begin checks what every method checks before it starts (its arguments
// checked already) and marks a call in progress; the caller must call
// s.mu.RUnlock when it returns.
func (s *Store) begin(ctx context.Context, op, room string) error {
	if err := store.CheckContext(ctx, op, room); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ClosedError(op)
	}
	return nil
}

// request is the context of one request: the caller's end does not cut it
// short (see StoreOptions.Timeout).
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
}

// Load returns the room's record, or an error wrapping store.ErrNotFound.
func (s *Store) Load(ctx context.Context, room string) (store.Record, error) {
	if err := store.CheckRoom(room); err != nil {
		return store.Record{}, err
	}
	if err := s.begin(ctx, "load", room); err != nil {
		return store.Record{}, err
	}
	defer s.mu.RUnlock()
	c, cancel := s.request(ctx)
	defer cancel()
	e, err := s.kv.Get(c, roomKey(room))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return store.Record{}, store.NotFoundError(room)
	}
	if err != nil {
		return store.Record{}, requestErr("load", room, err)
	}
	got, data, err := decodeRecord(e.Value())
	if err != nil {
		return store.Record{}, fmt.Errorf("store: room %q, revision %d: %w: set it aside (SetAside with expect 0) so the room can start afresh", room, e.Revision(), err)
	}
	if got != room {
		// Two ids with one SHA-256: not expected in this universe.
		return store.Record{}, store.NotFoundError(room)
	}
	return store.Record{Room: room, Data: data, Revision: e.Revision(), Saved: e.Created().UTC()}, nil
}

// Save stores data as the room's record if the stored revision is expect
// (0: no record) and returns the new revision; else a *store.ConflictError.
func (s *Store) Save(ctx context.Context, room string, data []byte, expect uint64) (uint64, error) {
	if err := store.CheckRoom(room); err != nil {
		return 0, err
	}
	if err := s.begin(ctx, "save", room); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if err := s.checkSize(room, len(data)); err != nil {
		return 0, err
	}
	c, cancel := s.request(ctx)
	defer cancel()
	key, value := roomKey(room), appendRecord(nil, room, data)
	var rev uint64
	var err error
	if expect == 0 {
		rev, err = s.kv.Create(c, key, value)
	} else {
		rev, err = s.kv.Update(c, key, value, expect)
	}
	if err == nil {
		return rev, nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, s.conflict(c, "save", room, expect)
	}
	return 0, requestErr("save", room, err)
}

// conflict builds the *store.ConflictError of a lost compare-and-set,
// reading which revision is stored now.
func (s *Store) conflict(ctx context.Context, op, room string, expect uint64) error {
	e, err := s.kv.Get(ctx, roomKey(room))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return &store.ConflictError{Op: op, Room: room, Expected: expect}
	case err != nil:
		return fmt.Errorf("%w (reading the stored revision: %v)", &store.ConflictError{Op: op, Room: room, Expected: expect}, err)
	}
	return &store.ConflictError{Op: op, Room: room, Expected: expect, Stored: e.Revision()}
}

// checkSize refuses a snapshot that cannot fit in one NATS message.
func (s *Store) checkSize(room string, n int) error {
	if err := store.CheckData(room, n); err != nil {
		return err
	}
	if n > s.maxValue-len(room)-recordOverhead {
		return fmt.Errorf("store: the snapshot of room %q is %d bytes; this NATS cluster carries at most %d per message (max_payload): keep less state in the room or raise max_payload (%w)", room, n, s.maxValue-len(room)-recordOverhead, store.ErrInvalid)
	}
	return nil
}

// Delete removes the room's record; it returns nil if there is none.
func (s *Store) Delete(ctx context.Context, room string) error {
	if err := store.CheckRoom(room); err != nil {
		return err
	}
	if err := s.begin(ctx, "delete", room); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	c, cancel := s.request(ctx)
	defer cancel()
	if err := s.kv.Delete(c, roomKey(room)); err != nil {
		return requestErr("delete", room, err)
	}
	return nil
}

// SetAside moves the room's record out of its way, under a new name. See
// store.Store.
//
// JetStream has no transaction over two keys: the set-aside copy is written
// first, then the room's record is deleted on the condition that it is
// still the revision copied. If that condition fails, the copy is removed
// again and SetAside reports the conflict; a reader may see both for that
// moment, never neither.
func (s *Store) SetAside(ctx context.Context, room string, expect uint64, reason string) (store.SetAsideInfo, error) {
	if err := store.CheckRoom(room); err != nil {
		return store.SetAsideInfo{}, err
	}
	if err := s.begin(ctx, "set aside", room); err != nil {
		return store.SetAsideInfo{}, err
	}
	defer s.mu.RUnlock()
	c, cancel := s.request(ctx)
	defer cancel()
	for {
		info, retry, err := s.setAside(c, room, expect, reason)
		if !retry {
			return info, err
		}
		if c.Err() != nil { // StoreOptions.Timeout, spent racing other callers
			return store.SetAsideInfo{}, requestErr("set aside", room, c.Err())
		}
	}
}

// setAside is one attempt of SetAside. It asks for a retry when, with expect
// 0, the record changed between reading and deleting it: "whatever is
// stored" is then the newer record.
func (s *Store) setAside(c context.Context, room string, expect uint64, reason string) (_ store.SetAsideInfo, retry bool, _ error) {
	e, err := s.kv.Get(c, roomKey(room))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if expect != 0 {
			return store.SetAsideInfo{}, false, &store.ConflictError{Op: "set aside", Room: room, Expected: expect}
		}
		return store.SetAsideInfo{}, false, store.NotFoundError(room)
	}
	if err != nil {
		return store.SetAsideInfo{}, false, requestErr("set aside", room, err)
	}
	if expect != 0 && e.Revision() != expect {
		return store.SetAsideInfo{}, false, &store.ConflictError{Op: "set aside", Room: room, Expected: expect, Stored: e.Revision()}
	}
	at := time.Now().UTC().Round(0)
	info := store.SetAsideInfo{
		// The record's revision is unique in the bucket, so it names the copy.
		Name:   store.SetAsideName(room, at, e.Revision()),
		Reason: store.CutReason(reason),
		At:     at,
		Info:   store.Info{Room: room, Revision: e.Revision(), Saved: e.Created().UTC()},
	}
	if _, data, err := decodeRecord(e.Value()); err == nil {
		info.Size = len(data)
	} else { // damaged: kept as it is, described as unreadable
		info.Size, info.Revision, info.Saved = len(e.Value()), 0, time.Time{}
	}
	akey := asideKey(e.Revision())
	if _, err := s.kv.Create(c, akey, appendAside(nil, info, e.Value())); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return store.SetAsideInfo{}, false, requestErr("set aside", room, err)
		}
		// Another caller is setting this very revision aside: with expect 0,
		// wait for its outcome and look again.
		if expect == 0 {
			time.Sleep(time.Millisecond)
			return store.SetAsideInfo{}, true, nil
		}
		return store.SetAsideInfo{}, false, &store.ConflictError{Op: "set aside", Room: room, Expected: expect, Stored: e.Revision()}
	}
	err = s.kv.Delete(c, roomKey(room), jetstream.LastRevision(e.Revision()))
	if err == nil {
		return info, false, nil
	}
	if perr := s.kv.Purge(c, akey); perr != nil {
		return store.SetAsideInfo{}, false, requestErr("set aside", room, fmt.Errorf("%w; and removing the copy %s failed: %v", err, akey, perr))
	}
	if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return store.SetAsideInfo{}, false, requestErr("set aside", room, err)
	}
	if expect == 0 {
		return store.SetAsideInfo{}, true, nil
	}
	return store.SetAsideInfo{}, false, s.conflict(c, "set aside", room, expect)
}

// ListSetAside describes the set-aside records, sorted by room, then time,
// then name.
func (s *Store) ListSetAside(ctx context.Context) ([]store.SetAsideInfo, error) {
	if err := s.begin(ctx, "list set-aside", ""); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	c, cancel := s.request(ctx)
	defer cancel()
	var out []store.SetAsideInfo
	err := s.each(c, asidePrefix+">", func(e jetstream.KeyValueEntry) {
		info, _, err := decodeAside(e.Value())
		if err != nil {
			// Not ours to drop: show it so an operator can see it.
			info = store.SetAsideInfo{Name: "unreadable " + e.Key(), Reason: err.Error()}
		}
		out = append(out, info)
	})
	if err != nil {
		return nil, requestErr("list set-aside", "", err)
	}
	slices.SortFunc(out, func(a, b store.SetAsideInfo) int {
		return cmp.Or(strings.Compare(a.Room, b.Room), a.At.Compare(b.At), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

// LoadSetAside returns the record set aside under name.
func (s *Store) LoadSetAside(ctx context.Context, name string) (store.Record, error) {
	if err := store.CheckSetAsideName(name); err != nil {
		return store.Record{}, err
	}
	if err := s.begin(ctx, "load set-aside", ""); err != nil {
		return store.Record{}, err
	}
	defer s.mu.RUnlock()
	i := strings.LastIndexByte(name, '#')
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if i < 0 || err != nil {
		return store.Record{}, store.SetAsideNotFoundError(name)
	}
	c, cancel := s.request(ctx)
	defer cancel()
	e, err := s.kv.Get(c, asideKey(n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return store.Record{}, store.SetAsideNotFoundError(name)
	}
	if err != nil {
		return store.Record{}, requestErr("load set-aside", "", err)
	}
	info, raw, err := decodeAside(e.Value())
	if err != nil {
		return store.Record{}, fmt.Errorf("store: set-aside record %q: %w", name, err)
	}
	if info.Name != name {
		return store.Record{}, store.SetAsideNotFoundError(name)
	}
	room, data, err := decodeRecord(raw)
	if err != nil {
		return store.Record{}, fmt.Errorf("store: set-aside record %q was damaged when it was set aside: %w", name, err)
	}
	return store.Record{Room: room, Data: data, Revision: info.Revision, Saved: info.Saved}, nil
}

// List describes the stored records, sorted by room id.
func (s *Store) List(ctx context.Context) ([]store.Info, error) {
	if err := s.begin(ctx, "list", ""); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	c, cancel := s.request(ctx)
	defer cancel()
	var out []store.Info
	err := s.each(c, roomPrefix+">", func(e jetstream.KeyValueEntry) {
		room, data, err := decodeRecord(e.Value())
		if err != nil {
			room, _ = keyRoom(e.Key())
			out = append(out, store.Info{Room: room, Size: len(e.Value())})
			return
		}
		out = append(out, store.Info{Room: room, Revision: e.Revision(), Size: len(data), Saved: e.Created().UTC()})
	})
	if err != nil {
		return nil, requestErr("list", "", err)
	}
	slices.SortFunc(out, func(a, b store.Info) int { return strings.Compare(a.Room, b.Room) })
	return out, nil
}

// each calls fn with the current entry of every live key matching filter.
func (s *Store) each(ctx context.Context, filter string, fn func(jetstream.KeyValueEntry)) error {
	w, err := s.kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed before the initial values were delivered")
			}
			if e == nil { // the end of the initial values
				return nil
			}
			fn(e)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close marks the store closed once the calls in progress have returned.
// The NATS connection is the caller's to close.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func requestErr(op, room string, err error) error {
	if room == "" {
		return fmt.Errorf("store: %s: JetStream request failed: %w; check that the NATS cluster is reachable and has a quorum", op, err)
	}
	return fmt.Errorf("store: %s room %q: JetStream request failed: %w; check that the NATS cluster is reachable and has a quorum", op, room, err)
}

// Keys. Base64url never contains '.', so r.ID (two tokens) and r.h.HASH
// (three) cannot meet.
const (
	roomPrefix  = "r."
	asidePrefix = "a."
	// maxPlainKeyRoom is the longest room id kept readable in its key;
	// longer ones are hashed so a key stays far below NATS's 4 KiB
	// control-line limit.
	maxPlainKeyRoom = 192
)

func roomKey(room string) string {
	if len(room) > maxPlainKeyRoom {
		sum := sha256.Sum256([]byte(room))
		return roomPrefix + "h." + hex.EncodeToString(sum[:])
	}
	return roomPrefix + base64.RawURLEncoding.EncodeToString([]byte(room))
}

// keyRoom is the room id of a key, when the key holds it.
func keyRoom(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, roomPrefix)
	if !ok || strings.HasPrefix(rest, "h.") {
		return key, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return key, false
	}
	return string(b), true
}

func asideKey(n uint64) string { return asidePrefix + strconv.FormatUint(n, 10) }

// Values.
//
//	record:   "SRK1" | CRC-32C of the rest (4, big endian) | uvarint len(room) | room | data
//	set-aside: "SRA1" | CRC-32C of the rest | uvarint-prefixed name, reason |
//	           at, saved (Unix ns, 8 each) | revision (8) | uvarint size | raw record value
var (
	recordMagic = []byte("SRK1")
	asideMagic  = []byte("SRA1")
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)

	errDamaged = fmt.Errorf("checksum or header does not verify (%w)", store.ErrCorrupt)
)

// recordOverhead is the most a record value adds to room and data.
const recordOverhead = 4 + 4 + binary.MaxVarintLen64

func appendRecord(dst []byte, room string, data []byte) []byte {
	dst = append(dst, recordMagic...)
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(len(room)))
	dst = append(dst, room...)
	dst = append(dst, data...)
	binary.BigEndian.PutUint32(dst[at:], crc32.Checksum(dst[at+4:], castagnoli))
	return dst
}

func decodeRecord(v []byte) (room string, data []byte, err error) {
	rest, err := verify(v, recordMagic)
	if err != nil {
		return "", nil, err
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return "", nil, errDamaged
	}
	rest = rest[k:]
	return string(rest[:n]), slices.Clone(rest[n:]), nil
}

func appendAside(dst []byte, info store.SetAsideInfo, raw []byte) []byte {
	dst = append(dst, asideMagic...)
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(len(info.Name)))
	dst = append(dst, info.Name...)
	dst = binary.AppendUvarint(dst, uint64(len(info.Reason)))
	dst = append(dst, info.Reason...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(info.At)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(info.Saved)))
	dst = binary.BigEndian.AppendUint64(dst, info.Revision)
	dst = binary.AppendUvarint(dst, uint64(info.Size))
	dst = append(dst, raw...)
	binary.BigEndian.PutUint32(dst[at:], crc32.Checksum(dst[at+4:], castagnoli))
	return dst
}

func decodeAside(v []byte) (store.SetAsideInfo, []byte, error) {
	rest, err := verify(v, asideMagic)
	if err != nil {
		return store.SetAsideInfo{}, nil, err
	}
	var info store.SetAsideInfo
	str := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	info.Name, ok1 = str()
	info.Reason, ok2 = str()
	if !ok1 || !ok2 || len(rest) < 24 {
		return store.SetAsideInfo{}, nil, errDamaged
	}
	info.At = fromUnixNano(int64(binary.BigEndian.Uint64(rest)))
	info.Saved = fromUnixNano(int64(binary.BigEndian.Uint64(rest[8:])))
	info.Revision = binary.BigEndian.Uint64(rest[16:])
	rest = rest[24:]
	size, k := binary.Uvarint(rest)
	if k <= 0 || size > uint64(store.MaxDataLength) {
		return store.SetAsideInfo{}, nil, errDamaged
	}
	info.Size = int(size)
	raw := slices.Clone(rest[k:])
	if room, _, err := decodeRecord(raw); err == nil {
		info.Room = room
	} else if i := strings.LastIndexByte(info.Name, '@'); i >= 0 {
		info.Room = info.Name[:i]
	}
	return info, raw, nil
}

func verify(v, magic []byte) ([]byte, error) {
	if len(v) < 8 || string(v[:4]) != string(magic) {
		return nil, errDamaged
	}
	if crc32.Checksum(v[8:], castagnoli) != binary.BigEndian.Uint32(v[4:8]) {
		return nil, errDamaged
	}
	return v[8:], nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
