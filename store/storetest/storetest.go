// Package storetest is the conformance suite of store.Store: every
// implementation runs it, so that the room runtime can rely on the same
// semantics (compare-and-set, revisions never reused, set-aside) whichever
// store a server uses.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stateroom-go/stateroom/store"
)

// Run runs the conformance suite. open is called once per subtest and must
// return a new, empty store; Run closes it. The subtests do not run in
// parallel, and assert nothing about timing.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Missing", testMissing},
		{"Conflicts", testConflicts},
		{"RevisionsAcrossDeleteAndSetAside", testRevisionsAcross},
		{"SetAside", testSetAside},
		{"ListOrder", testList},
		{"BadInput", testBadInput},
		{"Context", testContext},
		{"HammerOneRoom", testHammerOneRoom},
		{"ManyRoomsConcurrently", testManyRooms},
		{"MixedConcurrentOps", testMixed},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

func mustSave(t *testing.T, s store.Store, room string, data []byte, expect uint64) uint64 {
	t.Helper()
	rev, err := s.Save(ctx, room, data, expect)
	if err != nil {
		t.Fatalf("Save(%q, expect %d): %v", room, expect, err)
	}
	if rev == 0 {
		t.Fatalf("Save(%q, expect %d) returned revision 0", room, expect)
	}
	if rev <= expect {
		t.Fatalf("Save(%q, expect %d) returned revision %d, not higher", room, expect, rev)
	}
	return rev
}

func mustLoad(t *testing.T, s store.Store, room string) store.Record {
	t.Helper()
	rec, err := s.Load(ctx, room)
	if err != nil {
		t.Fatalf("Load(%q): %v", room, err)
	}
	if rec.Room != room {
		t.Fatalf("Load(%q).Room = %q", room, rec.Room)
	}
	return rec
}

func wantNotFound(t *testing.T, s store.Store, room string) {
	t.Helper()
	rec, err := s.Load(ctx, room)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load(%q) = %+v, %v; want ErrNotFound", room, rec, err)
	}
}

func wantConflict(t *testing.T, err error, expected, stored uint64) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v; want ErrConflict", err)
	}
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %T %v; want a *ConflictError", err, err)
	}
	if ce.Expected != expected || ce.Stored != stored {
		t.Fatalf("conflict: expected %d, stored %d; want expected %d, stored %d", ce.Expected, ce.Stored, expected, stored)
	}
	if stored != 0 && !strings.Contains(err.Error(), fmt.Sprintf("revision %d is stored", stored)) {
		t.Fatalf("conflict error %q does not say which revision is stored", err)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	for _, room := range []string{"lobby", "a/b@c#d é", "\x00", strings.Repeat("r", store.MaxRoomLength)} {
		data := []byte("state of " + room + "\x00\xff")
		rev := mustSave(t, s, room, data, 0)
		data[0] = 'X' // the store must have copied it
		rec := mustLoad(t, s, room)
		if string(rec.Data) != "state of "+room+"\x00\xff" || rec.Revision != rev || rec.Saved.IsZero() {
			t.Fatalf("Load(%q) = %q rev %d saved %v; want the saved data, rev %d", room, rec.Data, rec.Revision, rec.Saved, rev)
		}
		rec.Data[0] = 'Y' // and must hand out copies
		if again := mustLoad(t, s, room); again.Data[0] != 's' {
			t.Fatalf("changing the loaded data changed the store: %q", again.Data)
		}
		rev2 := mustSave(t, s, room, []byte("second"), rev)
		if rec := mustLoad(t, s, room); string(rec.Data) != "second" || rec.Revision != rev2 {
			t.Fatalf("after the second save: %q rev %d; want %q rev %d", rec.Data, rec.Revision, "second", rev2)
		}
	}
	for _, data := range [][]byte{nil, {}} {
		rev := mustSave(t, s, "empty", data, 0)
		rec := mustLoad(t, s, "empty")
		if rec.Data == nil || len(rec.Data) != 0 || rec.Revision != rev {
			t.Fatalf("empty data: Load = %#v; want non-nil empty data, rev %d", rec, rev)
		}
		if err := s.Delete(ctx, "empty"); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: spans pages
	rev := mustSave(t, s, "big", big, 0)
	if rec := mustLoad(t, s, "big"); !bytes.Equal(rec.Data, big) || rec.Revision != rev {
		t.Fatalf("1 MiB record did not round-trip")
	}
}

func testMissing(t *testing.T, s store.Store) {
	wantNotFound(t, s, "nobody")
	if err := s.Delete(ctx, "nobody"); err != nil {
		t.Fatalf("Delete of a missing room: %v; want nil", err)
	}
	if _, err := s.SetAside(ctx, "nobody", 0, "why"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetAside of a missing room, expect 0: %v; want ErrNotFound", err)
	}
	_, err := s.SetAside(ctx, "nobody", 7, "why")
	wantConflict(t, err, 7, 0)
	if _, err := s.LoadSetAside(ctx, "nobody@2000-01-01T00:00:00.000000000Z#1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LoadSetAside of a missing name: %v; want ErrNotFound", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List of an empty store = %v, %v", l, err)
	}
	if l, err := s.ListSetAside(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListSetAside of an empty store = %v, %v", l, err)
	}
}

func testConflicts(t *testing.T, s store.Store) {
	_, err := s.Save(ctx, "r", []byte("x"), 5)
	wantConflict(t, err, 5, 0) // expects a record that does not exist
	wantNotFound(t, s, "r")

	r1 := mustSave(t, s, "r", []byte("one"), 0)
	_, err = s.Save(ctx, "r", []byte("again from scratch"), 0)
	wantConflict(t, err, 0, r1) // expect 0 with a record present
	r2 := mustSave(t, s, "r", []byte("two"), r1)
	_, err = s.Save(ctx, "r", []byte("stale"), r1)
	wantConflict(t, err, r1, r2) // a stale writer
	_, err = s.Save(ctx, "r", []byte("future"), r2+100)
	wantConflict(t, err, r2+100, r2)
	if rec := mustLoad(t, s, "r"); string(rec.Data) != "two" || rec.Revision != r2 {
		t.Fatalf("after lost saves: %q rev %d; want %q rev %d", rec.Data, rec.Revision, "two", r2)
	}
	if r2 <= r1 {
		t.Fatalf("revisions %d then %d: not increasing", r1, r2)
	}
	// Another room's revisions do not fence this one.
	o1 := mustSave(t, s, "other", []byte("o"), 0)
	mustSave(t, s, "other", []byte("o2"), o1)
	mustSave(t, s, "r", []byte("three"), r2)
}

func testRevisionsAcross(t *testing.T, s store.Store) {
	r1 := mustSave(t, s, "r", []byte("1"), 0)
	r2 := mustSave(t, s, "r", []byte("2"), r1)
	if err := s.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, s, "r")
	_, err := s.Save(ctx, "r", []byte("stale after delete"), r2)
	wantConflict(t, err, r2, 0)
	r3 := mustSave(t, s, "r", []byte("3"), 0)
	if r3 <= r2 {
		t.Fatalf("revision after Delete and re-create = %d; want > %d", r3, r2)
	}
	if _, err := s.SetAside(ctx, "r", r3, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Save(ctx, "r", []byte("stale after set-aside"), r3)
	wantConflict(t, err, r3, 0)
	r4 := mustSave(t, s, "r", []byte("4"), 0)
	if r4 <= r3 {
		t.Fatalf("revision after SetAside and re-create = %d; want > %d", r4, r3)
	}
	// Many cycles: never a revision seen before.
	seen := map[uint64]bool{r1: true, r2: true, r3: true, r4: true}
	last := r4
	for i := range 20 {
		if i%2 == 0 {
			if err := s.Delete(ctx, "r"); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.SetAside(ctx, "r", 0, "cycle"); err != nil {
			t.Fatal(err)
		}
		rev := mustSave(t, s, "r", []byte("again"), 0)
		if seen[rev] || rev <= last {
			t.Fatalf("cycle %d: revision %d after %d (seen before: %v)", i, rev, last, seen[rev])
		}
		seen[rev], last = true, rev
	}
}

func testSetAside(t *testing.T, s store.Store) {
	r1 := mustSave(t, s, "room", []byte("corrupt envelope"), 0)
	_, err := s.SetAside(ctx, "room", r1+1, "stale owner")
	wantConflict(t, err, r1+1, r1)
	mustLoad(t, s, "room") // still there

	info, err := s.SetAside(ctx, "room", r1, "envelope does not decode")
	if err != nil {
		t.Fatalf("SetAside: %v", err)
	}
	if !strings.Contains(info.Name, "room") || info.Room != "room" || info.Reason != "envelope does not decode" ||
		info.At.IsZero() || info.Revision != r1 || info.Size != len("corrupt envelope") || info.Saved.IsZero() {
		t.Fatalf("SetAside returned %+v", info)
	}
	if y := fmt.Sprint(info.At.Year()); !strings.Contains(info.Name, y) {
		t.Fatalf("set-aside name %q does not include the time %v", info.Name, info.At)
	}
	wantNotFound(t, s, "room")
	if l, _ := s.List(ctx); len(l) != 0 {
		t.Fatalf("List after SetAside = %+v; want no records", l)
	}
	rec, err := s.LoadSetAside(ctx, info.Name)
	if err != nil {
		t.Fatalf("LoadSetAside(%q): %v", info.Name, err)
	}
	if rec.Room != "room" || string(rec.Data) != "corrupt envelope" || rec.Revision != r1 || !rec.Saved.Equal(info.Saved) {
		t.Fatalf("LoadSetAside = %+v", rec)
	}

	// The room starts afresh, and can be set aside again; both are kept.
	r2 := mustSave(t, s, "room", []byte("fresh"), 0)
	info2, err := s.SetAside(ctx, "room", 0, strings.Repeat("é", store.MaxReasonLength)) // operator: whatever is stored
	if err != nil {
		t.Fatal(err)
	}
	if len(info2.Reason) > store.MaxReasonLength || !strings.HasPrefix(info2.Reason, "éé") || !utf8Valid(info2.Reason) {
		t.Fatalf("long reason kept as %d bytes (valid UTF-8: %v)", len(info2.Reason), utf8Valid(info2.Reason))
	}
	if info2.Name == info.Name || info2.Revision != r2 {
		t.Fatalf("second set-aside: %+v (first %+v)", info2, info)
	}
	mustSave(t, s, "a-first", []byte("a"), 0)
	if _, err := s.SetAside(ctx, "a-first", 0, "another room"); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSetAside(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Room != "a-first" || list[1].Room != "room" || list[2].Room != "room" {
		t.Fatalf("ListSetAside = %+v", list)
	}
	if !slices.IsSortedFunc(list, func(a, b store.SetAsideInfo) int {
		return cmp.Or(cmp.Compare(a.Room, b.Room), a.At.Compare(b.At), cmp.Compare(a.Name, b.Name))
	}) {
		t.Fatalf("ListSetAside not sorted by room, time, name: %+v", list)
	}
	for _, l := range list {
		want := info
		switch l.Name {
		case info.Name:
		case info2.Name:
			want = info2
		default:
			continue
		}
		if l.Room != want.Room || l.Reason != want.Reason || !l.At.Equal(want.At) || l.Revision != want.Revision || l.Size != want.Size || !l.Saved.Equal(want.Saved) {
			t.Fatalf("listed %+v; SetAside returned %+v", l, want)
		}
	}
	if rec, err := s.LoadSetAside(ctx, info2.Name); err != nil || string(rec.Data) != "fresh" {
		t.Fatalf("LoadSetAside(second) = %+v, %v", rec, err)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func testList(t *testing.T, s store.Store) {
	rooms := []string{"m", "b", "a/z", "a", "B", "é", "aa", "a\x00", "z"}
	revs := map[string]uint64{}
	for i, r := range rooms {
		revs[r] = mustSave(t, s, r, bytes.Repeat([]byte{'x'}, i), 0)
	}
	revs["m"] = mustSave(t, s, "m", []byte("longer data"), revs["m"])
	if err := s.Delete(ctx, "z"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAside(ctx, "aa", 0, "gone"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range list {
		got = append(got, in.Room)
		wantSize := slices.Index(rooms, in.Room)
		if in.Room == "m" {
			wantSize = len("longer data")
		}
		if in.Revision != revs[in.Room] || in.Size != wantSize || in.Saved.IsZero() {
			t.Fatalf("List entry %+v; want revision %d, size %d", in, revs[in.Room], wantSize)
		}
		if rec := mustLoad(t, s, in.Room); !rec.Saved.Equal(in.Saved) {
			t.Fatalf("List says %q was saved at %v, Load says %v", in.Room, in.Saved, rec.Saved)
		}
	}
	want := []string{"B", "a", "a\x00", "a/z", "b", "m", "é"}
	if !slices.Equal(got, want) {
		t.Fatalf("List rooms = %q; want %q (byte order)", got, want)
	}
}

func testBadInput(t *testing.T, s store.Store) {
	bad := map[string]string{
		"empty":    "",
		"too long": strings.Repeat("r", store.MaxRoomLength+1),
		"not UTF8": "\xff\xfe",
	}
	for what, room := range bad {
		errs := map[string]error{}
		_, errs["Load"] = s.Load(ctx, room)
		_, errs["Save"] = s.Save(ctx, room, []byte("x"), 0)
		errs["Delete"] = s.Delete(ctx, room)
		_, errs["SetAside"] = s.SetAside(ctx, room, 0, "r")
		for m, err := range errs {
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "room id") {
				t.Errorf("%s with a room id %s: %v; want ErrInvalid saying what is wrong with the room id", m, what, err)
			}
		}
	}
	if _, err := s.LoadSetAside(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("LoadSetAside(\"\"): %v; want ErrInvalid", err)
	}
	if l, _ := s.List(ctx); len(l) != 0 {
		t.Fatalf("bad input stored something: %+v", l)
	}
}

func testContext(t *testing.T, s store.Store) {
	r1 := mustSave(t, s, "kept", []byte("x"), 0)
	c, cancel := context.WithCancel(ctx)
	cancel()
	errs := map[string]error{}
	_, errs["Load"] = s.Load(c, "kept")
	_, errs["Save"] = s.Save(c, "new", []byte("x"), 0)
	_, errs["Save over"] = s.Save(c, "kept", []byte("y"), r1)
	errs["Delete"] = s.Delete(c, "kept")
	_, errs["SetAside"] = s.SetAside(c, "kept", 0, "r")
	_, errs["List"] = s.List(c)
	_, errs["ListSetAside"] = s.ListSetAside(c)
	_, errs["LoadSetAside"] = s.LoadSetAside(c, "kept@x#1")
	for m, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v; want context.Canceled", m, err)
		}
	}
	wantNotFound(t, s, "new")
	if rec := mustLoad(t, s, "kept"); rec.Revision != r1 || string(rec.Data) != "x" {
		t.Fatalf("cancelled calls changed the record: %+v", rec)
	}
}

// testHammerOneRoom has goroutines race compare-and-sets on one room: every
// revision must have exactly one successor, i.e. the winners form one chain.
func testHammerOneRoom(t *testing.T, s store.Store) {
	const goroutines, target = 8, 150
	type win struct {
		expect, rev uint64
		data        string
	}
	var (
		mu   sync.Mutex
		wins []win
		n    atomic.Int64
		wg   sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			var expect uint64
			for attempt := 0; n.Load() < target; attempt++ {
				data := fmt.Sprintf("g%d-%d", g, attempt)
				rev, err := s.Save(ctx, "hot", []byte(data), expect)
				var ce *store.ConflictError
				switch {
				case err == nil:
					mu.Lock()
					wins = append(wins, win{expect, rev, data})
					mu.Unlock()
					n.Add(1)
					expect = rev
				case errors.As(err, &ce):
					if attempt%3 == 0 { // sometimes learn the revision from the error,
						expect = ce.Stored
						continue
					}
					rec, err := s.Load(ctx, "hot") // sometimes from a Load
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Load: %v", err)
						return
					}
					expect = rec.Revision
				default:
					t.Errorf("Save: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	slices.SortFunc(wins, func(a, b win) int { return cmp.Compare(a.rev, b.rev) })
	var prev uint64
	for i, w := range wins {
		if w.expect != prev {
			t.Fatalf("win %d: revision %d expected %d, but the previous winner made %d: two writers won from one revision", i, w.rev, w.expect, prev)
		}
		prev = w.rev
	}
	last := wins[len(wins)-1]
	if rec := mustLoad(t, s, "hot"); rec.Revision != last.rev || string(rec.Data) != last.data {
		t.Fatalf("stored %q rev %d; the last winner saved %q rev %d", rec.Data, rec.Revision, last.data, last.rev)
	}
	t.Logf("%d wins in a chain", len(wins))
}

func testManyRooms(t *testing.T, s store.Store) {
	const rooms, saves = 64, 4
	var wg sync.WaitGroup
	for r := range rooms {
		wg.Go(func() {
			room := fmt.Sprintf("room-%03d", r)
			var rev uint64
			for i := range saves {
				next, err := s.Save(ctx, room, fmt.Appendf(nil, "%s/%d", room, i), rev)
				if err != nil || next <= rev {
					t.Errorf("Save(%s, expect %d) = %d, %v", room, rev, next, err)
					return
				}
				rev = next
			}
		})
	}
	wg.Wait()
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != rooms {
		t.Fatalf("List has %d rooms; want %d", len(list), rooms)
	}
	for i, in := range list {
		room := fmt.Sprintf("room-%03d", i)
		if in.Room != room {
			t.Fatalf("List[%d] = %q; want %q", i, in.Room, room)
		}
		if rec := mustLoad(t, s, room); string(rec.Data) != fmt.Sprintf("%s/%d", room, saves-1) {
			t.Fatalf("%s holds %q", room, rec.Data)
		}
	}
}

// testMixed runs every method at once on a few rooms and checks that no room
// ever got the same revision twice.
func testMixed(t *testing.T, s store.Store) {
	const goroutines, ops = 6, 40
	rooms := []string{"x", "y", "z"}
	var (
		mu   sync.Mutex
		seen = map[string]map[uint64]bool{}
		wg   sync.WaitGroup
	)
	for _, r := range rooms {
		seen[r] = map[uint64]bool{}
	}
	for g := range goroutines {
		wg.Go(func() {
			for i := range ops {
				room := rooms[(g+i)%len(rooms)]
				var err error
				switch (g*7 + i) % 8 {
				case 0:
					err = s.Delete(ctx, room)
				case 1:
					_, err = s.SetAside(ctx, room, 0, "mixed")
					if errors.Is(err, store.ErrNotFound) {
						err = nil
					}
				case 2:
					_, err = s.List(ctx)
				case 3:
					_, err = s.ListSetAside(ctx)
				default:
					var expect uint64
					rec, lerr := s.Load(ctx, room)
					if lerr == nil {
						expect = rec.Revision
					} else if !errors.Is(lerr, store.ErrNotFound) {
						err = lerr
						break
					}
					var rev uint64
					rev, err = s.Save(ctx, room, []byte(room), expect)
					if err == nil {
						mu.Lock()
						if seen[room][rev] {
							t.Errorf("room %s got revision %d twice", room, rev)
						}
						seen[room][rev] = true
						mu.Unlock()
					} else if errors.Is(err, store.ErrConflict) {
						err = nil
					}
				}
				if err != nil {
					t.Errorf("goroutine %d op %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	list, err := s.ListSetAside(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if _, err := s.LoadSetAside(ctx, a.Name); err != nil {
			t.Fatalf("LoadSetAside(%q): %v", a.Name, err)
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	rev := mustSave(t, s, "r", []byte("x"), 0)
	info, err := s.SetAside(ctx, "r", rev, "before close")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	errs := map[string]error{}
	_, errs["Load"] = s.Load(ctx, "r")
	_, errs["Save"] = s.Save(ctx, "r", []byte("x"), 0)
	errs["Delete"] = s.Delete(ctx, "r")
	_, errs["SetAside"] = s.SetAside(ctx, "r", 0, "r")
	_, errs["List"] = s.List(ctx)
	_, errs["ListSetAside"] = s.ListSetAside(ctx)
	_, errs["LoadSetAside"] = s.LoadSetAside(ctx, info.Name)
	for m, err := range errs {
		if !errors.Is(err, store.ErrClosed) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("%s after Close: %v; want ErrClosed", m, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v; want nil", err)
	}
}
