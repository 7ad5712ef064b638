// Package cluster spreads rooms over several Stateroom nodes on NATS: one
// owner per room, any node accepts a room's clients, and a room's state
// lives in a replicated JetStream key-value bucket so that another node can
// take the room over with its state when its owner dies.
//
// This package holds the cluster's parts that the single-node server does
// not need, so that a server without clustering links and runs nothing of
// NATS: Node (the embedded or external NATS, one lease per node, the
// directory of room owners, forwarding between a client's node and its
// room's owner, and the release of a room's ownership when it ends) and
// Store, the store.Store of room snapshots on JetStream. The design is in
// docs/DECISIONS.md, "Rooms across nodes".
package cluster
