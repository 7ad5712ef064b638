package store

import (
	"errors"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Hooks for the external tests (package store_test).

// SetUnbatched makes b save with one transaction per Save (db.Update)
// instead of sharing transactions (db.Batch), for the benchmark.
func SetUnbatched(b *Bolt) { b.unbatched = true }

// SetOpenFile makes Open open files with f.
func SetOpenFile(o *BoltOptions, f func(string, int, os.FileMode) (*os.File, error)) { o.openFile = f }

// CheckFile runs bbolt's consistency check of the pages of b's file.
func CheckFile(b *Bolt) error {
	return b.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drain: the check runs until it closes the channel
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}
