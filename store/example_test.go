package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/stateroom-go/stateroom/store"
)

// A room's owner loads the room's record, and saves each new snapshot with
// the revision it last saw: a writer that lost ownership cannot overwrite a
// newer state.
func Example() {
	ctx := context.Background()
	s := store.NewMemory()
	defer s.Close()

	// A new room: no record yet.
	_, err := s.Load(ctx, "lobby")
	fmt.Println("new room:", errors.Is(err, store.ErrNotFound))

	rev, _ := s.Save(ctx, "lobby", []byte(`{"count":1}`), 0) // 0: no record may exist
	rev, _ = s.Save(ctx, "lobby", []byte(`{"count":2}`), rev)
	fmt.Println("saved revision", rev)

	// A stale owner still thinks revision 1 is current.
	_, err = s.Save(ctx, "lobby", []byte(`{"count":-5}`), 1)
	var conflict *store.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("stale save refused: stored", conflict.Stored, "expected", conflict.Expected)
	}

	rec, _ := s.Load(ctx, "lobby")
	fmt.Printf("%s at revision %d\n", rec.Data, rec.Revision)

	// The snapshot turns out not to decode: move it out of the room's way.
	info, _ := s.SetAside(ctx, "lobby", rec.Revision, "envelope does not decode")
	aside, _ := s.ListSetAside(ctx)
	fmt.Println(len(aside), "set aside:", aside[0].Room, aside[0].Revision, aside[0].Reason, aside[0].Name == info.Name)
	rev, _ = s.Save(ctx, "lobby", []byte(`{"count":0}`), 0)
	fmt.Println("fresh start at revision", rev) // unique, not contiguous: 3 named the set-aside record
	// Output:
	// new room: true
	// saved revision 2
	// stale save refused: stored 2 expected 1
	// {"count":2} at revision 2
	// 1 set aside: lobby 2 envelope does not decode true
	// fresh start at revision 4
}

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "stateroom-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state", "rooms.db") // the missing directory is created
	ctx := context.Background()

	s, err := store.Open(path, store.BoltOptions{})
	if err != nil {
		log.Fatal(err) // e.g. another stateroom process holds the file
	}
	rev, err := s.Save(ctx, "lobby", []byte("snapshot"), 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	// After a restart the record is still there.
	s, err = store.Open(path, store.BoltOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	rec, err := s.Load(ctx, "lobby")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, revision %d (saved as %d)\n", rec.Data, rec.Revision, rev)
	// Output:
	// snapshot, revision 1 (saved as 1)
}
