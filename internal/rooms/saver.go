package rooms

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/stateroom-go/stateroom/store"
)

// saver writes rooms' snapshots to the store off the rooms' path: a room
// takes its snapshot under its lock (that much is the service's state) and
// hands the bytes over; a slow disk never stalls a room's events.
//
// Rooms are spread over a few shards by id, each with one writer, so the
// saves of one room stay in order (each carries the revision the last one
// returned: the compare-and-set that fences a stale writer) while saves of
// different rooms run in parallel, and a bbolt store can batch them into
// one transaction. A writer takes up to saveBatch rooms from its queue at
// once and saves them concurrently, one save per room: a store that
// batches (bbolt's db.Batch waits up to 10 ms to gather one) would
// otherwise write one room per batch per writer, and a Shutdown saving
// 1,000 rooms took 2.3 s instead of a few batches.
type saver struct {
	store  store.Store
	seed   maphash.Seed
	shards []*saveShard
}

// saveShard is one writer's queue. Latest wins: a room's snapshot queued
// while an older one waits replaces it.
type saveShard struct {
	mu       sync.Mutex
	wake     *sync.Cond
	queue    []string            // room ids in arrival order, each once
	latest   map[string]saveItem // the snapshot to write next, by room id
	inflight map[string]bool     // the rooms being written now
	revs     map[string]uint64   // the last revision known per room; the writer's own
}

type saveItem struct {
	data []byte
	room *Room // for its logger
}

// saveShards is the number of writers: enough for a store to batch many
// rooms' saves, few enough to cost nothing idle.
const saveShards = 8

// saveBatch is the most rooms one writer saves at once.
const saveBatch = 64

// saveTimeout bounds one write: a store that hangs must not hold a room's
// next save forever.
const saveTimeout = 30 * time.Second

func newSaver(st store.Store) *saver {
	s := &saver{store: st, seed: maphash.MakeSeed(), shards: make([]*saveShard, saveShards)}
	for i := range s.shards {
		sh := &saveShard{latest: make(map[string]saveItem), revs: make(map[string]uint64), inflight: make(map[string]bool)}
		sh.wake = sync.NewCond(&sh.mu)
		s.shards[i] = sh
	}
	return s
}

func (s *saver) shard(id string) *saveShard {
	return s.shards[maphash.String(s.seed, id)%uint64(len(s.shards))]
}

// start runs the writers, counted by the registry's owner. They end once
// the owner is closing, no room runs and nothing is queued.
func (s *saver) start(g *Registry) {
	for _, sh := range s.shards {
		g.cfg.Owner.Go(func() { sh.run(g, s.store) })
	}
}

// enqueue queues data as room r's next snapshot.
func (s *saver) enqueue(r *Room, data []byte) {
	sh := s.shard(r.id)
	sh.mu.Lock()
	if _, queued := sh.latest[r.id]; !queued {
		sh.queue = append(sh.queue, r.id)
	}
	sh.latest[r.id] = saveItem{data: data, room: r}
	sh.mu.Unlock()
	sh.wake.Signal()
}

// settled waits until no snapshot of room id is queued or being written,
// so a new instance of the room loads the last one. It returns the
// revision the writer last saw for id (0 when none).
func (s *saver) settled(id string) uint64 {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for {
		if _, queued := sh.latest[id]; !queued && !sh.inflight[id] {
			return sh.revs[id]
		}
		sh.wake.Wait()
	}
}

// pending reports whether a snapshot of room id is queued or being
// written.
func (s *saver) pending(id string) bool {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, queued := sh.latest[id]
	return queued || sh.inflight[id]
}

// setRevision records the revision a room loaded, for its next save. Called
// by create, with no save of the room queued (settled returned).
func (s *saver) setRevision(id string, rev uint64) {
	sh := s.shard(id)
	sh.mu.Lock()
	if rev == 0 {
		delete(sh.revs, id)
	} else {
		sh.revs[id] = rev
	}
	sh.mu.Unlock()
}

// wakeAll makes every writer look again at whether it may end.
func (s *saver) wakeAll() {
	for _, sh := range s.shards {
		sh.mu.Lock()
		sh.wake.Broadcast()
		sh.mu.Unlock()
	}
}

func (sh *saveShard) run(g *Registry, st store.Store) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for {
		if len(sh.queue) == 0 {
			// A room queues its last save before it leaves the
			// registry, so no room running means every save has been
			// queued. The check is made with sh.mu held (the lock order
			// allows the registry's under it): released, a wakeAll from
			// the last room's removal could come between the check and
			// the Wait, and be lost.
			if g.cfg.Owner.Closing() && g.RoomCount() == 0 {
				return
			}
			sh.wake.Wait()
			continue
		}
		n := min(len(sh.queue), saveBatch)
		batch := make([]saveJob, n)
		for i, id := range sh.queue[:n] {
			batch[i] = saveJob{id: id, item: sh.latest[id], rev: sh.revs[id]}
			delete(sh.latest, id)
			sh.inflight[id] = true
		}
		sh.queue = sh.queue[n:]
		sh.mu.Unlock()

		// Each room's save on a goroutine of its own, joined before the
		// writer goes on: none outlives the writer, which the owner
		// counts.
		var wg sync.WaitGroup
		for i := range batch {
			j := &batch[i]
			wg.Go(func() { j.newRev, j.err = sh.write(st, j.id, j.item.data, j.rev) })
		}
		wg.Wait()

		sh.mu.Lock()
		for _, j := range batch {
			g.metrics.saved(j.err, len(j.item.data))
			if j.err != nil {
				j.item.room.logger().Error("room state not saved", "err", j.err)
			} else {
				sh.revs[j.id] = j.newRev
			}
			delete(sh.inflight, j.id)
			if g.lookup(j.id) == nil {
				if _, queued := sh.latest[j.id]; !queued && j.err == nil {
					delete(sh.revs, j.id)
				}
			}
		}
		sh.wake.Broadcast() // settled waiters
	}
}

// saveJob is one room's save in a writer's batch.
type saveJob struct {
	id     string
	item   saveItem
	rev    uint64 // the revision the save expects
	newRev uint64
	err    error
}

func (sh *saveShard) write(st store.Store, id string, data []byte, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	newRev, err := st.Save(ctx, id, data, rev)
	if errors.Is(err, store.ErrConflict) {
		// Someone else wrote this room since we loaded it: another
		// server on the same store, or an operator's delete. Never
		// overwrite it; this instance's state is the stale one.
		return 0, errors.Join(err, errFenced)
	}
	return newRev, err
}

var errFenced = errors.New("this room's stored state changed under this server (another server on the same store, or an operator deleted it); not overwriting it")
