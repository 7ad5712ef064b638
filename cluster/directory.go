package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Buckets of the directory (see docs/DECISIONS.md, "Rooms across nodes").
const (
	ownersBucket = "stateroom_owners"
	nodesBucket  = "stateroom_nodes"
)

// owner is a node at one process start: a node restarted under the same
// name is another owner, so it cannot inherit its predecessor's leases.
type owner struct {
	Node        string
	Incarnation string
}

func (o owner) String() string { return o.Node + "/" + o.Incarnation }

func (o owner) encode() []byte { return []byte(o.Node + "\n" + o.Incarnation) }

func decodeOwner(b []byte) (owner, bool) {
	node, inc, ok := strings.Cut(string(b), "\n")
	if !ok || checkNodeName(node) != nil || inc == "" {
		return owner{}, false
	}
	return owner{node, inc}, true
}

// claim is the answer of directory.claim: who owns a room and since which
// revision of its owner entry (the room's epoch).
type claim struct {
	Owner owner
	// Previous is the owner a takeover took the room from.
	Previous owner
	Epoch    uint64
	// Mine is true if this node owns the room; Takeover is true if it
	// just took the room over from a node whose lease had expired (the
	// caller must fence the store before the room runs).
	Mine, Takeover bool
}

// directory decides which node owns each room: one key per room in
// ownersBucket (create-if-absent decides; compare-and-set takes over), one
// lease per node in nodesBucket (a key whose message carries a TTL).
type directory struct {
	js     jetstream.JetStream
	owners jetstream.KeyValue
	nodes  jetstream.KeyValue
	self   owner
	ttl    time.Duration

	mu        sync.Mutex
	leaseRev  uint64    // revision of our lease entry
	renewedAt time.Time // when the last successful renewal started
	goneAt    time.Time // when a lapsed node first saw its old lease gone (see renew)
	resigned  bool
}

// errFenced refuses work on a node that could not renew its lease in time.
var errFenced = errors.New("this node could not renew its cluster lease in time and stopped serving rooms until it can; try another node or try again later")

// errNodeNameInUse refuses a second live process under one node name.
var errNodeNameInUse = errors.New("node name in use")

// checkNodeName checks that name can be a NATS subject token and a key.
func checkNodeName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("cluster: node name %q: use 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("cluster: node name %q has %q: use only A-Z, a-z, 0-9, '-' and '_'", name, r)
		}
	}
	return nil
}

// openDirectory opens (creating) the directory's buckets and registers
// node's lease. It fails with errNodeNameInUse if a live process holds the
// name.
func openDirectory(ctx context.Context, js jetstream.JetStream, node string, ttl time.Duration, replicas int) (*directory, error) {
	if err := checkNodeName(node); err != nil {
		return nil, err
	}
	if ttl < 3*time.Second {
		return nil, fmt.Errorf("cluster: lease TTL %v is too short: NATS leader elections take seconds; use at least 3s (default 15s)", ttl)
	}
	owners, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: ownersBucket, Description: "Stateroom: the node that owns each room",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, err
	}
	nodes, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: nodesBucket, Description: "Stateroom: one lease per live node",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
		// Expired leases leave a delete marker, so watchers learn of them.
		LimitMarkerTTL: ttl,
	})
	if err != nil {
		return nil, err
	}
	if nodes, err = leaderReads(ctx, js, nodes); err != nil {
		return nil, err
	}
	// Owner entries are read through the leader too: a claim that read a
	// replica still holding an entry this node released could run the room
	// with no entry. Their releases leave markers that expire (allowMsgTTL).
	if owners, err = leaderReads(ctx, js, owners); err != nil {
		return nil, err
	}
	if owners, err = adjustBucket(ctx, js, owners, "expire its release markers", allowMsgTTL); err != nil {
		return nil, err
	}
	d := &directory{js: js, owners: owners, nodes: nodes, ttl: ttl,
		self: owner{Node: node, Incarnation: newIncarnation()}}
	started := time.Now()
	rev, err := nodes.Create(ctx, node, []byte(d.self.Incarnation), jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("cluster: node %q: %w: another live process uses it (or one that died less than the lease TTL, %v, ago): give every node its own --node name, or wait", node, errNodeNameInUse, ttl)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: register node %q: %w", node, err)
	}
	d.leaseRev, d.renewedAt = rev, started
	return d, nil
}

// leaderReads makes reads of kv go to its stream's leader. JetStream
// buckets answer reads from any replica by default ("direct get"), and a
// replica catching up may not hold the latest write yet: a lease read from
// it could find a live node dead and let its room be taken over, and a
// room could load the revision before the one its takeover just saved.
// The leader has every write it acknowledged.
func leaderReads(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	return adjustBucket(ctx, js, kv, "read through its leader", func(cfg *jetstream.StreamConfig) bool {
		was := cfg.AllowDirect
		cfg.AllowDirect = false
		return was
	})
}

// allowMsgTTL lets a bucket's messages carry a TTL: an owner entry's
// release leaves a marker that expires (directory.release), so ended rooms
// leave nothing behind. Buckets made by earlier versions lack it.
func allowMsgTTL(cfg *jetstream.StreamConfig) bool {
	was := cfg.AllowMsgTTL
	cfg.AllowMsgTTL = true
	return !was
}

// adjustBucket applies change to the configuration of kv's stream, and
// updates the stream if change reports that it changed something; what
// says what for the error. Attempts are retried (JetStream may be electing
// leaders) until ctx ends. It returns kv bound again, with the new
// configuration.
func adjustBucket(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, what string, change func(*jetstream.StreamConfig) bool) (jetstream.KeyValue, error) {
	// The bucket's name once: a failed js.KeyValue returns a nil KeyValue,
	// which the next attempt must not ask for it (a start under load
	// panicked on exactly that).
	bucket := kv.Bucket()
	name := "KV_" + bucket
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(c, name)
		if err == nil {
			cfg := s.CachedInfo().Config
			if change(&cfg) {
				_, err = js.UpdateStream(c, cfg)
			}
		}
		var bound jetstream.KeyValue
		if err == nil {
			bound, err = js.KeyValue(c, bucket)
		}
		cancel()
		if err == nil {
			return bound, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: make the bucket %q %s: %w (last error: %v)", bucket, what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// renew extends the node's lease by one TTL. It is a compare-and-set on the
// lease's revision. If the lease expired meanwhile (the node went longer
// than the TTL without renewing, so it has fenced itself and another node
// may have taken its rooms), the node registers again as a new
// incarnation: rooms of the old one are anyone's to take over.
//
// A node past its fence deadline never renews its old incarnation, even if
// the lease is still there: a renewal that reaches the stream close to the
// old entry's expiry can be acknowledged and then followed by that
// expiry's delete marker (JetStream decides an expiry before it writes the
// marker). test/netns saw it: a fenced node's renewal was acknowledged,
// the node served again, its lease vanished 2 ms later, and another node
// took over a room it was running (0.58 s of two owners). Renewals sent
// before the deadline leave at least TTL/3 before the old expiry, far more
// than that window. So a lapsed node stays fenced until its old lease is
// gone (errLeaseLapsing), and registers a new incarnation only once it has
// seen it gone on an earlier attempt, at least markerSettle before: by
// then the expiry's marker is written, and the new entry comes after it.
func (d *directory) renew(ctx context.Context) error {
	started := time.Now()
	d.mu.Lock()
	rev, self, resigned := d.leaseRev, d.self, d.resigned
	lapsed := started.After(d.renewedAt.Add(d.ttl - d.ttl/3))
	d.mu.Unlock()
	if resigned {
		return fmt.Errorf("cluster: node %q resigned: it is leaving the cluster", self.Node)
	}
	if lapsed {
		return d.registerAfterLapse(ctx, self, started)
	}
	m := &nats.Msg{Subject: "$KV." + nodesBucket + "." + self.Node, Data: []byte(self.Incarnation)}
	ack, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(d.ttl), jetstream.WithExpectLastSequencePerSubject(rev))
	if err == nil {
		d.mu.Lock()
		d.leaseRev, d.renewedAt = ack.Sequence, started
		d.mu.Unlock()
		return nil
	}
	if !wrongLastSequence(err) {
		return fmt.Errorf("cluster: renew the lease of node %q: %w", self.Node, err)
	}
	// The revision moved. If the lease still holds our incarnation, an
	// earlier renewal landed although its answer was lost: carry on from it.
	if e, gerr := d.nodes.Get(ctx, self.Node); gerr == nil && string(e.Value()) == self.Incarnation {
		d.mu.Lock()
		if d.leaseRev == rev {
			d.leaseRev = e.Revision()
		}
		d.mu.Unlock()
		return d.renew(ctx)
	}
	return d.register(ctx, self, started)
}

// markerSettle is how long after a lapsed node sees its old lease gone it
// waits before registering again: JetStream expires entries on a one-second
// tick and writes the expiry's marker after the entry is gone.
const markerSettle = time.Second

// registerAfterLapse is renew for a node past its fence deadline: see
// renew.
func (d *directory) registerAfterLapse(ctx context.Context, self owner, started time.Time) error {
	e, err := d.nodes.Get(ctx, self.Node)
	switch {
	case err == nil && string(e.Value()) == self.Incarnation:
		d.mu.Lock()
		d.goneAt = time.Time{}
		d.mu.Unlock()
		return errLeaseLapsing
	case err == nil:
		return fmt.Errorf("cluster: node %q: its lease expired and %w: another process uses the name now", self.Node, errNodeNameInUse)
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("cluster: read the lease of node %q: %w", self.Node, err)
	}
	d.mu.Lock()
	goneAt := d.goneAt
	if goneAt.IsZero() {
		d.goneAt = started
	}
	d.mu.Unlock()
	if goneAt.IsZero() || started.Sub(goneAt) < markerSettle {
		return errLeaseLapsing
	}
	return d.register(ctx, self, started)
}

// register writes a new incarnation of the node over its expired lease.
func (d *directory) register(ctx context.Context, self owner, started time.Time) error {
	fresh := owner{Node: self.Node, Incarnation: newIncarnation()}
	rev, err := d.nodes.Create(ctx, self.Node, []byte(fresh.Incarnation), jetstream.KeyTTL(d.ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("cluster: node %q: its lease expired and %w: another process uses the name now", self.Node, errNodeNameInUse)
	}
	if err != nil {
		return fmt.Errorf("cluster: register node %q again after its lease expired: %w", self.Node, err)
	}
	d.mu.Lock()
	d.self, d.leaseRev, d.renewedAt, d.goneAt = fresh, rev, started, time.Time{}
	d.mu.Unlock()
	return errLeaseExpired
}

// wrongLastSequence reports whether err is JetStream refusing a
// compare-and-set write: the key's revision was not the one expected.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// errLeaseExpired is the error of a renewal that found the lease expired
// and registered the node again under a new incarnation.
var errLeaseExpired = errors.New("cluster: the lease had expired: registered again as a new incarnation; the rooms of the old one may move")

// errLeaseLapsing is the error of a renewal by a node past its fence
// deadline whose old lease has not expired yet, or expired too recently:
// the node stays fenced and registers again once it has (see renew).
var errLeaseLapsing = errors.New("cluster: the lease was not renewed in time: the node stays fenced until its old lease has expired, then registers again as a new incarnation")

// me returns the node at its current incarnation.
func (d *directory) me() owner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.self
}

// incarnation returns the node's current incarnation.
func (d *directory) incarnation() string { return d.me().Incarnation }

func newIncarnation() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// mustFence reports whether the node has gone too long without a renewal:
// the server counts the lease's TTL from when it received the last renewal,
// which is after renewedAt, so stopping at renewedAt + ttl*2/3 always comes
// before any other node can see the lease expire.
func (d *directory) mustFence(now time.Time) bool {
	return !now.Before(d.fenceDeadline())
}

// fenceDeadline is when the node must stop serving unless a renewal
// started before then succeeds.
func (d *directory) fenceDeadline() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.renewedAt.Add(d.ttl - d.ttl/3)
}

// alive reports whether o holds a live lease.
func (d *directory) alive(ctx context.Context, o owner) (bool, error) {
	e, err := d.nodes.Get(ctx, o.Node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return string(e.Value()) == o.Incarnation, nil
}

// claim finds the owner of room, making this node the owner if the room
// has none or its owner's lease is gone. Exactly one node wins each race
// (create-if-absent, compare-and-set); losers see the winner.
func (d *directory) claim(ctx context.Context, room string) (claim, error) {
	if d.mustFence(time.Now()) {
		return claim{}, errFenced
	}
	key, self := roomKey(room), d.me()
	for attempt := 0; attempt < 8; attempt++ {
		// Create first: a new room then costs one write and no read. (The
		// client's Create reads only when the key exists as a deletion.)
		rev, err := d.owners.Create(ctx, key, self.encode())
		if err == nil {
			return claim{Owner: self, Epoch: rev, Mine: true}, nil
		}
		// A create over a released entry's marker that loses a race
		// fails with JetStream's own error, not ErrKeyExists.
		if !errors.Is(err, jetstream.ErrKeyExists) && !wrongLastSequence(err) {
			return claim{}, fmt.Errorf("cluster: claim room %q: %w", room, err)
		}
		e, err := d.owners.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: create again
		}
		if err != nil {
			return claim{}, fmt.Errorf("cluster: find the owner of room %q: %w", room, err)
		}
		o, ok := decodeOwner(e.Value())
		if ok && o == self {
			return claim{Owner: o, Epoch: e.Revision(), Mine: true}, nil
		}
		if ok {
			live, err := d.alive(ctx, o)
			if err != nil {
				return claim{}, fmt.Errorf("cluster: check the lease of node %q, owner of room %q: %w", o.Node, room, err)
			}
			if live {
				return claim{Owner: o, Epoch: e.Revision()}, nil
			}
		}
		// The owner is gone (or the entry unreadable): take the room over
		// from exactly the entry read.
		rev, err = d.owners.Update(ctx, key, self.encode(), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) || wrongLastSequence(err) {
			continue
		}
		if err != nil {
			return claim{}, fmt.Errorf("cluster: take over room %q from %v: %w", room, o, err)
		}
		return claim{Owner: self, Previous: o, Epoch: rev, Mine: true, Takeover: true}, nil
	}
	return claim{}, fmt.Errorf("cluster: room %q: its owner changed 8 times while this node looked it up; try again", room)
}

// errMoved is the error of a release whose entry is no longer the
// revision released: the room has moved, there is nothing to give up.
var errMoved = errors.New("the room's owner entry changed")

// release gives up this node's ownership of room at epoch, the revision of
// its owner entry: the entry is purged if it is still that revision
// (compare-and-set; errMoved if not), so the next join anywhere claims the
// room afresh, as a new epoch. The purge leaves a marker (a replicated
// delete) that expires after one lease TTL: ended rooms leave nothing.
func (d *directory) release(ctx context.Context, room string, epoch uint64) error {
	err := d.owners.Purge(ctx, roomKey(room), jetstream.LastRevision(epoch), jetstream.PurgeTTL(d.ttl))
	switch {
	case err == nil:
		return nil
	case wrongLastSequence(err):
		return errMoved
	}
	return fmt.Errorf("cluster: give up room %q (its entry stays; the room stays this node's): %w", room, err)
}

// resign deletes the node's lease (graceful shutdown, after its rooms were
// saved), so other nodes need not wait for the TTL. Later calls do nothing.
func (d *directory) resign(ctx context.Context) error {
	d.mu.Lock()
	rev, self, done := d.leaseRev, d.self, d.resigned
	d.resigned = true
	d.mu.Unlock()
	if done {
		return nil
	}
	err := d.nodes.Delete(ctx, self.Node, jetstream.LastRevision(rev))
	if err != nil {
		// A renewal whose answer was lost may have moved the revision.
		if e, gerr := d.nodes.Get(ctx, self.Node); gerr == nil && string(e.Value()) == self.Incarnation {
			err = d.nodes.Delete(ctx, self.Node, jetstream.LastRevision(e.Revision()))
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: resign node %q (its lease expires by itself within %v): %w", self.Node, d.ttl, err)
	}
	return nil
}
