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
	Epoch uint64
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
	owners, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: ownersBucket, Description: "Stateroom: the node that owns each room",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: open the bucket %q (replicas %d): %w", ownersBucket, replicas, err)
	}
	nodes, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: nodesBucket, Description: "Stateroom: one lease per live node",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
		// Expired leases leave a delete marker, so watchers learn of them.
		LimitMarkerTTL: ttl,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: open the bucket %q (replicas %d): %w", nodesBucket, replicas, err)
	}
	inc := make([]byte, 8)
	if _, err := rand.Read(inc); err != nil {
		return nil, err
	}
	d := &directory{js: js, owners: owners, nodes: nodes, ttl: ttl,
		self: owner{Node: node, Incarnation: hex.EncodeToString(inc)}}
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

// renew extends the node's lease by one TTL. It is a compare-and-set on the
// lease's revision: if it fails, another process took the name or the lease
// expired, and this node must stop serving (the caller fences).
func (d *directory) renew(ctx context.Context) error {
	started := time.Now()
	d.mu.Lock()
	rev := d.leaseRev
	d.mu.Unlock()
	m := &nats.Msg{Subject: "$KV." + nodesBucket + "." + d.self.Node, Data: []byte(d.self.Incarnation)}
	ack, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(d.ttl), jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		return fmt.Errorf("cluster: renew the lease of node %q: %w", d.self.Node, err)
	}
	d.mu.Lock()
	d.leaseRev, d.renewedAt = ack.Sequence, started
	d.mu.Unlock()
	return nil
}

// mustFence reports whether the node has gone too long without a renewal:
// the server counts the lease's TTL from when it received the last renewal,
// which is after renewedAt, so stopping at renewedAt + ttl*2/3 always comes
// before any other node can see the lease expire.
func (d *directory) mustFence(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return now.Sub(d.renewedAt) > d.ttl-d.ttl/3
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
	key := roomKey(room)
	for attempt := 0; attempt < 8; attempt++ {
		e, err := d.owners.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			rev, err := d.owners.Create(ctx, key, d.self.encode())
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another node won: read it
			}
			if err != nil {
				return claim{}, fmt.Errorf("cluster: claim room %q: %w", room, err)
			}
			return claim{Owner: d.self, Epoch: rev, Mine: true}, nil
		}
		if err != nil {
			return claim{}, fmt.Errorf("cluster: find the owner of room %q: %w", room, err)
		}
		o, ok := decodeOwner(e.Value())
		if ok && o == d.self {
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
		rev, err := d.owners.Update(ctx, key, d.self.encode(), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return claim{}, fmt.Errorf("cluster: take over room %q from %v: %w", room, o, err)
		}
		return claim{Owner: d.self, Epoch: rev, Mine: true, Takeover: true}, nil
	}
	return claim{}, fmt.Errorf("cluster: room %q: its owner changed 8 times while this node looked it up; try again", room)
}

// release gives up the ownership of room at epoch (the room ended here), so
// that the next join anywhere creates it. It changes nothing if the room
// changed hands since.
func (d *directory) release(ctx context.Context, room string, epoch uint64) error {
	err := d.owners.Delete(ctx, roomKey(room), jetstream.LastRevision(epoch))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("cluster: release room %q: %w", room, err)
	}
	return nil
}

// resign deletes the node's lease (graceful shutdown, after its rooms were
// saved and released), so other nodes need not wait for the TTL.
func (d *directory) resign(ctx context.Context) error {
	d.mu.Lock()
	rev := d.leaseRev
	d.mu.Unlock()
	if err := d.nodes.Delete(ctx, d.self.Node, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("cluster: resign node %q: %w", d.self.Node, err)
	}
	return nil
}
