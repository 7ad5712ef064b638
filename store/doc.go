// Package store keeps the snapshots that make rooms durable: one record per
// room, holding the latest snapshot of the room's service state (opaque bytes
// to the store), so that a room can be restored after a restart.
//
// # Revisions and fencing
//
// Every Save is a compare-and-set: it names the revision it expects to
// replace (0 for a room with no record) and gets the new one back, or a
// *ConflictError saying which revision is stored. The store assigns
// revisions and never reuses one for a room, not even after Delete or
// SetAside, so a writer that lost ownership of a room (a stale owner after a
// failover, a second process) can never overwrite a newer state: its next
// Save fails with ErrConflict, and it should stop writing to the room.
//
// # Damaged snapshots
//
// If a record cannot be used (the store reports ErrCorrupt, or the room
// runtime cannot decode the snapshot), SetAside moves it out of the room's
// way without deleting it, under a name that includes the room and the time,
// with a reason. The room then starts afresh, and an operator finds the
// record with ListSetAside and reads it with LoadSetAside.
//
// # Stores
//
// Memory keeps records in the process, for tests and for servers without
// persistence. Bolt keeps them in one bbolt file (Open); concurrent Saves of
// many rooms share one fsync-ed transaction. Package storetest is the
// conformance suite every Store passes.
//
// # Operating the bbolt file
//
// One process at a time may open the file; a second Open fails after
// BoltOptions.LockTimeout with ErrLocked. The file grows to hold the largest
// set of records it has had and does not shrink: to reclaim space, stop the
// server, run `bbolt compact -o rooms.db.new rooms.db` (go install
// go.etcd.io/bbolt/cmd/bbolt@v1.5.0) and move the new file over the old one.
// To back it up, copy it while the server is stopped. `bbolt check FILE`
// verifies its pages (also with the server stopped: the bbolt command waits
// for the lock).
package store
