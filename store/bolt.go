package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults of BoltOptions.
const (
	// DefaultLockTimeout is how long Open waits for the file lock.
	DefaultLockTimeout = time.Second
	// DefaultBatchDelay is how long a Save waits for others to share its
	// transaction (bbolt's DefaultMaxBatchDelay).
	DefaultBatchDelay = 10 * time.Millisecond
	// DefaultMaxBatch is the most Saves one transaction commits (bbolt's
	// DefaultMaxBatchSize).
	DefaultMaxBatch = 1000
)

// BoltOptions configures Open. The zero value is ready to use.
type BoltOptions struct {
	// LockTimeout bounds how long Open waits for another process to release
	// the file (0: DefaultLockTimeout). A file is held by one process at a
	// time: two servers cannot share a state file.
	LockTimeout time.Duration

	// BatchDelay is how long a Save waits for Saves of other rooms to join
	// its transaction, so that they share one commit and its fsyncs
	// (0: DefaultBatchDelay). A full batch (MaxBatch) commits at once.
	BatchDelay time.Duration

	// MaxBatch is the most Saves one transaction commits (0:
	// DefaultMaxBatch).
	MaxBatch int

	// openFile replaces os.OpenFile in tests.
	openFile func(string, int, os.FileMode) (*os.File, error)
}

// Bolt is a Store kept in one bbolt file (go.etcd.io/bbolt): a single-file,
// transactional, copy-on-write B+tree that fsyncs every commit. Concurrent
// Saves share transactions (bbolt's DB.Batch), so many rooms checkpointing at
// once cost one commit rather than one each. One process at a time may have
// the file open.
//
// The file holds three buckets: "meta" (the format and the revision counter),
// "records" (room id -> record) and "aside" (set-aside name -> record). It
// never shrinks by itself; to reclaim the space of deleted records, stop the
// server and run `bbolt compact -o NEW OLD` (go.etcd.io/bbolt/cmd/bbolt), then
// move NEW over OLD.
type Bolt struct {
	path string
	db   *bolt.DB

	mu     sync.RWMutex // held for reading by calls, for writing by Close
	closed bool

	unbatched bool // tests and benchmarks: one transaction per Save
}

var _ Store = (*Bolt)(nil)

var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")
	bucketAside   = []byte("aside")
	keyFormat     = []byte("format")
	keyRevision   = []byte("revision")
	formatValue   = []byte("stateroom-store 1")
)

// Open opens the bbolt state file at path, creating it (mode 0600) and its
// missing parent directories (mode 0700) if needed. It fails, with an error
// naming the path and saying what to do, if another process holds the file
// (after opts.LockTimeout, wrapping ErrLocked), if the file is not a
// stateroom state file, or if it cannot be written.
func Open(path string, opts BoltOptions) (*Bolt, error) {
	if path == "" {
		return nil, fmt.Errorf("store: empty path for the state file: pass the path of a file, e.g. STATE_DIR/rooms.db (%w)", ErrInvalid)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.BatchDelay <= 0 {
		opts.BatchDelay = DefaultBatchDelay
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: cannot create the directory %s for the state file %s: %w; create it yourself, or use another --state-dir", dir, path, err)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: %s is a %s, not a state file: give the path of a file (it is created if missing), or use another --state-dir", path, kind(fi.Mode()))
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, OpenFile: opts.openFile})
	if err != nil {
		return nil, openErr(path, opts.LockTimeout, err)
	}
	db.MaxBatchDelay = opts.BatchDelay
	db.MaxBatchSize = opts.MaxBatch
	if err := initFile(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &Bolt{path: path, db: db}, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// openErr explains an error of bolt.Open.
func openErr(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("store: %s: %w (waited %v): another stateroom process probably has it open; stop that process, or give this one another --state-dir", path, ErrLocked, timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return fmt.Errorf("store: %s is not a bbolt database, or its header is damaged (%w): if it is a stateroom state file, restore it from a backup; otherwise move it away, or use another --state-dir", path, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("store: cannot open %s for reading and writing (%w): make the file and its directory writable by the user running stateroom, or use another --state-dir", path, err)
	}
	return fmt.Errorf("store: cannot open the state file %s: %w; if it is not a stateroom state file, move it away or use another --state-dir", path, err)
}

// initFile checks that db is a stateroom state file, making it one if it is
// empty.
func initFile(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			var others []string
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				others = append(others, fmt.Sprintf("%q", name))
				return nil
			})
			if len(others) > 0 {
				return fmt.Errorf("a bbolt database but not a stateroom state file (it has the buckets %v and no %q): move it away, or use another --state-dir", others, bucketMeta)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, formatValue); err != nil {
				return err
			}
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, formatValue) {
			return fmt.Errorf("unknown state file format %q (this version of stateroom reads %q; was it written by a newer one?): upgrade stateroom, or use another --state-dir", f, formatValue)
		}
		if _, err := tx.CreateBucketIfNotExists(bucketRecords); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketAside)
		return err
	})
}

// Path returns the path of the state file.
func (b *Bolt) Path() string { return b.path }

// enter starts a call; leave must follow unless it fails.
func (b *Bolt) enter(op string) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return closedErr(op)
	}
	return nil
}

func (b *Bolt) leave() { b.mu.RUnlock() }

// txErr explains an error of a bbolt transaction.
func (b *Bolt) txErr(op, room string, err error) error {
	what := op
	if room != "" {
		what = fmt.Sprintf("%s room %q", op, room)
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.ENOSPC):
		hint = ": free some disk space"
	case errors.Is(err, syscall.EROFS), errors.Is(err, fs.ErrPermission):
		hint = ": make the state file writable"
	case errors.Is(err, syscall.EIO):
		hint = ": the disk may be failing; copy the state file elsewhere and check it with `bbolt check`"
	}
	return fmt.Errorf("store: %s in %s: %w%s", what, b.path, err, hint)
}

func (b *Bolt) corruptErr(room string, err error) error {
	return fmt.Errorf("store: room %q in %s: %w: %v; set it aside (SetAside with expect 0, or the admin API) so the room can start afresh", room, b.path, ErrCorrupt, err)
}

// Load returns the room's record, or an error wrapping ErrNotFound (no
// record) or ErrCorrupt (a damaged one).
func (b *Bolt) Load(ctx context.Context, room string) (Record, error) {
	if err := checkRoom(room); err != nil {
		return Record{}, err
	}
	if err := ctxErr(ctx, "load", room); err != nil {
		return Record{}, err
	}
	if err := b.enter("load"); err != nil {
		return Record{}, err
	}
	defer b.leave()
	var rec Record
	var result error
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(room))
		if v == nil {
			result = notFoundErr(room)
			return nil
		}
		h, data, err := decodeRecord(v)
		if err != nil {
			result = b.corruptErr(room, err)
			return nil
		}
		rec = Record{Room: room, Data: clone(data), Revision: h.revision, Saved: h.saved}
		return nil
	})
	if err != nil {
		return Record{}, b.txErr("load", room, err)
	}
	return rec, result
}

// Save stores data as the room's record if the stored revision is expect
// (0: no record may exist) and returns the new revision; otherwise it returns
// a *ConflictError. Concurrent Saves share one transaction (up to
// BoltOptions.MaxBatch of them, waiting up to BoltOptions.BatchDelay for one
// another); when Save returns nil the record is on disk. If ctx is done
// before the transaction runs, nothing is saved. A record whose header is
// damaged is never overwritten: Save then fails with ErrCorrupt.
func (b *Bolt) Save(ctx context.Context, room string, data []byte, expect uint64) (uint64, error) {
	if err := checkRoom(room); err != nil {
		return 0, err
	}
	if err := checkData(room, len(data)); err != nil {
		return 0, err
	}
	if err := ctxErr(ctx, "save", room); err != nil {
		return 0, err
	}
	if err := b.enter("save"); err != nil {
		return 0, err
	}
	defer b.leave()
	key := []byte(room)
	var (
		revision uint64
		result   error
		value    []byte
	)
	// fn may run more than once (DB.Batch retries a batch without a call
	// that failed), each time in a new transaction: it sets revision and
	// result afresh, and the last run is the one committed. A lost
	// compare-and-set is a result, not an error of fn, so that it does not
	// make the whole batch run again.
	fn := func(tx *bolt.Tx) error {
		revision, result = 0, nil
		if err := ctxErr(ctx, "save", room); err != nil {
			result = err
			return nil
		}
		records := tx.Bucket(bucketRecords)
		var stored uint64
		if old := records.Get(key); old != nil {
			h, err := decodeHeader(old)
			if err != nil {
				result = b.corruptErr(room, err)
				return nil
			}
			stored = h.revision
		}
		if stored != expect {
			result = &ConflictError{Op: "save", Room: room, Expected: expect, Stored: stored}
			return nil
		}
		next, err := nextRevision(tx, stored)
		if err != nil {
			return err
		}
		value = appendRecord(value[:0], next, now(), data)
		if err := records.Put(key, value); err != nil {
			return err
		}
		revision = next
		return nil
	}
	var err error
	if b.unbatched {
		err = b.db.Update(fn)
	} else {
		err = b.db.Batch(fn)
	}
	if err != nil {
		return 0, b.txErr("save", room, err)
	}
	return revision, result
}

// nextRevision hands out the next revision from the store's counter, higher
// than stored (the revision of the record it replaces) whatever the counter
// says.
func nextRevision(tx *bolt.Tx, stored uint64) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	var last uint64
	if v := meta.Get(keyRevision); v != nil {
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: the revision counter is %d bytes, not 8: the file is damaged; restore it from a backup", ErrCorrupt, len(v))
		}
		last = binary.BigEndian.Uint64(v)
	}
	next := max(last, stored) + 1
	if err := meta.Put(keyRevision, binary.BigEndian.AppendUint64(nil, next)); err != nil {
		return 0, err
	}
	return next, nil
}

// Delete removes the room's record; it returns nil if there is none.
func (b *Bolt) Delete(ctx context.Context, room string) error {
	if err := checkRoom(room); err != nil {
		return err
	}
	if err := ctxErr(ctx, "delete", room); err != nil {
		return err
	}
	if err := b.enter("delete"); err != nil {
		return err
	}
	defer b.leave()
	key := []byte(room)
	err := b.db.Update(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketRecords)
		if records.Get(key) == nil {
			return nil
		}
		return records.Delete(key)
	})
	if err != nil {
		return b.txErr("delete", room, err)
	}
	return nil
}

// SetAside moves the room's record out of its way, under a new name, in one
// transaction. See Store.
func (b *Bolt) SetAside(ctx context.Context, room string, expect uint64, reason string) (SetAsideInfo, error) {
	if err := checkRoom(room); err != nil {
		return SetAsideInfo{}, err
	}
	if err := ctxErr(ctx, "set aside", room); err != nil {
		return SetAsideInfo{}, err
	}
	if err := b.enter("set aside"); err != nil {
		return SetAsideInfo{}, err
	}
	defer b.leave()
	reason = cutReason(reason)
	key := []byte(room)
	var info SetAsideInfo
	var result error
	err := b.db.Update(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketRecords)
		raw := records.Get(key)
		if raw == nil {
			if expect != 0 {
				result = &ConflictError{Op: "set aside", Room: room, Expected: expect}
			} else {
				result = notFoundErr(room)
			}
			return nil
		}
		if expect != 0 {
			h, err := decodeHeader(raw)
			if err != nil {
				result = fmt.Errorf("store: set aside room %q in %s: %w: %v; its revision cannot be read, so set it aside with expect 0", room, b.path, ErrCorrupt, err)
				return nil
			}
			if h.revision != expect {
				result = &ConflictError{Op: "set aside", Room: room, Expected: expect, Stored: h.revision}
				return nil
			}
		}
		n, err := nextRevision(tx, 0)
		if err != nil {
			return err
		}
		at := now()
		info = SetAsideInfo{Name: asideName(room, at, n), Reason: reason, At: at, Info: infoOf(room, raw)}
		value := appendAside(nil, asideMeta{room: room, reason: reason, at: at}, raw)
		aside := tx.Bucket(bucketAside)
		if aside.Get([]byte(info.Name)) != nil {
			return fmt.Errorf("set-aside name %q is taken (the revision counter went back?)", info.Name)
		}
		if err := aside.Put([]byte(info.Name), value); err != nil {
			return err
		}
		return records.Delete(key)
	})
	if err != nil {
		return SetAsideInfo{}, b.txErr("set aside", room, err)
	}
	if result != nil {
		return SetAsideInfo{}, result
	}
	return info, nil
}

// ListSetAside describes the set-aside records, sorted by room, then time,
// then name. An entry that cannot be read is listed with its name and a
// reason that says so.
func (b *Bolt) ListSetAside(ctx context.Context) ([]SetAsideInfo, error) {
	if err := ctxErr(ctx, "list set-aside records", ""); err != nil {
		return nil, err
	}
	if err := b.enter("list set-aside records"); err != nil {
		return nil, err
	}
	defer b.leave()
	var out []SetAsideInfo
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAside).ForEach(func(k, v []byte) error {
			m, raw, err := decodeAside(v)
			if err != nil {
				out = append(out, SetAsideInfo{Name: string(k), Reason: fmt.Sprintf("(unreadable entry: %v)", err), Info: Info{Size: len(v)}})
				return nil
			}
			out = append(out, SetAsideInfo{Name: string(k), Reason: m.reason, At: m.at, Info: infoOf(m.room, raw)})
			return nil
		})
	})
	if err != nil {
		return nil, b.txErr("list set-aside records", "", err)
	}
	if out == nil {
		out = []SetAsideInfo{}
	}
	sortAside(out)
	return out, nil
}

// LoadSetAside returns the record set aside under name, or an error wrapping
// ErrNotFound, or ErrCorrupt if it cannot be read (`bbolt get FILE aside
// NAME` then shows its bytes, with the server stopped).
func (b *Bolt) LoadSetAside(ctx context.Context, name string) (Record, error) {
	if err := checkName(name); err != nil {
		return Record{}, err
	}
	if err := ctxErr(ctx, "load set-aside record", ""); err != nil {
		return Record{}, err
	}
	if err := b.enter("load set-aside record"); err != nil {
		return Record{}, err
	}
	defer b.leave()
	var rec Record
	var result error
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAside).Get([]byte(name))
		if v == nil {
			result = asideNotFoundErr(name)
			return nil
		}
		m, raw, err := decodeAside(v)
		if err != nil {
			result = fmt.Errorf("store: set-aside record %q in %s: %w: %v", name, b.path, ErrCorrupt, err)
			return nil
		}
		h, data, err := decodeRecord(raw)
		if err != nil {
			result = fmt.Errorf("store: set-aside record %q in %s: %w: %v (it was probably set aside for that reason)", name, b.path, ErrCorrupt, err)
			return nil
		}
		rec = Record{Room: m.room, Data: clone(data), Revision: h.revision, Saved: h.saved}
		return nil
	})
	if err != nil {
		return Record{}, b.txErr("load set-aside record", "", err)
	}
	return rec, result
}

// List describes the stored records, sorted by room id. It reads only the
// records' headers: a record whose data is damaged is listed, and Load
// reports it.
func (b *Bolt) List(ctx context.Context) ([]Info, error) {
	if err := ctxErr(ctx, "list", ""); err != nil {
		return nil, err
	}
	if err := b.enter("list"); err != nil {
		return nil, err
	}
	defer b.leave()
	var out []Info
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			out = append(out, infoOf(string(k), v))
			return nil
		})
	})
	if err != nil {
		return nil, b.txErr("list", "", err)
	}
	if out == nil {
		out = []Info{}
	}
	return out, nil
}

// Close waits for the calls in progress, then closes the file and releases
// its lock. Later calls fail with ErrClosed; closing again returns nil.
func (b *Bolt) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: closing %s: %w", b.path, err)
	}
	return nil
}
