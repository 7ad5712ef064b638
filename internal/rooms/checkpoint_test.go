package rooms

import (
	"math/rand/v2"
	"testing"
	"time"
)

// checkpointIntervals are the intervals the checkpoint tests try: the
// default, other whole numbers of slots, the shortest aligned one, and
// intervals that are not a whole number of slots (used as they are).
var checkpointIntervals = []time.Duration{
	time.Second, 250 * time.Millisecond, 5 * time.Second, time.Hour, 10, 7, time.Second + 1, 1,
}

// aligned reports whether checkpointDelay aligns interval to slots.
func aligned(interval time.Duration) bool {
	return interval >= checkpointSlots && interval%checkpointSlots == 0
}

// TestCheckpointDelayBounds: the save is never later than interval after
// the event that armed it, never sooner than interval less one slot, and
// falls on a slot boundary, for times on and off boundaries, before 1970
// too.
func TestCheckpointDelayBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, interval := range checkpointIntervals {
		q := interval / checkpointSlots
		nows := []time.Time{time.Unix(0, 0), time.Unix(1_800_000_000, 0), time.Unix(-1, 0), time.Unix(0, -1)}
		for range 2000 {
			nows = append(nows, time.Unix(0, rng.Int64N(4_000_000_000_000_000_000)-1_000_000_000_000_000_000))
		}
		for _, now := range nows {
			d := checkpointDelay(now, interval)
			if d > interval {
				t.Fatalf("interval %v, now %d: delay %v is longer than the interval: a crash would lose more", interval, now.UnixNano(), d)
			}
			if !aligned(interval) {
				if d != interval {
					t.Fatalf("interval %v (not a whole number of slots), now %d: delay %v, want the interval", interval, now.UnixNano(), d)
				}
				continue
			}
			if d <= interval-q {
				t.Fatalf("interval %v, now %d: delay %v is not more than the interval less a slot (%v)", interval, now.UnixNano(), d, interval-q)
			}
			if at := now.UnixNano() + int64(d); at%int64(q) != 0 {
				t.Fatalf("interval %v, now %d: fires at %d, not a multiple of the slot %v", interval, now.UnixNano(), at, q)
			}
		}
	}
}

// TestCheckpointDelaySharedSlot: rooms that become dirty anywhere in the
// same slot save at the same instant, so their Saves meet in one batch;
// the next slot's rooms save one slot later.
func TestCheckpointDelaySharedSlot(t *testing.T) {
	interval := time.Second
	q := interval / checkpointSlots
	base := time.Unix(1_800_000_000, 0) // a slot boundary
	want := base.Add(interval)
	for _, off := range []time.Duration{0, 1, q / 2, q - 1} {
		now := base.Add(off)
		if got := now.Add(checkpointDelay(now, interval)); !got.Equal(want) {
			t.Fatalf("dirty at boundary+%v: saves at %v, want %v", off, got, want)
		}
	}
	now := base.Add(q)
	if got := now.Add(checkpointDelay(now, interval)); !got.Equal(want.Add(q)) {
		t.Fatalf("dirty at the next boundary: saves at %v, want %v", got, want.Add(q))
	}
}

// checkpointRun simulates one room's checkpoints as touched and save run
// them: the first event after a save arms the checkpoint at
// checkpointDelay, and the save at that time writes every event before
// it. It returns the save times and, for each, the time of the first event
// it wrote.
func checkpointRun(interval time.Duration, events []time.Time) (saves, firsts []time.Time) {
	var due, first time.Time // zero: not armed
	for _, e := range events {
		if !due.IsZero() && !e.Before(due) { // the timer fired before this event
			saves, firsts = append(saves, due), append(firsts, first)
			due = time.Time{}
		}
		if due.IsZero() {
			first, due = e, e.Add(checkpointDelay(e, interval))
		}
	}
	if !due.IsZero() {
		saves, firsts = append(saves, due), append(firsts, first)
	}
	return saves, firsts
}

// TestCheckpointDelaySequence: through dirty/save cycles, with events
// continuous, sparse or in bursts, a room's saves are at least interval
// apart, each no later than interval after the first event it writes;
// with continuous events it saves exactly every interval (an aligned
// one: unaligned, the save after the next event comes a little later).
func TestCheckpointDelaySequence(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, interval := range checkpointIntervals {
		for _, pattern := range []struct {
			name string
			gap  func() time.Duration
		}{
			{"continuous", func() time.Duration { return interval/1000 + 1 }},
			{"random", func() time.Duration { return time.Duration(rng.Int64N(int64(3*interval))) + 1 }},
			{"bursts", func() time.Duration {
				if rng.IntN(20) == 0 {
					return time.Duration(rng.Int64N(int64(5*interval))) + 1
				}
				return time.Duration(rng.Int64N(int64(interval)/50 + 1))
			}},
		} {
			now := time.Unix(1_800_000_000, rng.Int64N(int64(time.Second)))
			var events []time.Time
			for range 20_000 {
				events = append(events, now)
				now = now.Add(pattern.gap())
			}
			saves, firsts := checkpointRun(interval, events)
			if len(saves) < 2 {
				t.Fatalf("interval %v, %s: %d saves; the run is too short to test", interval, pattern.name, len(saves))
			}
			for i, s := range saves {
				if late := s.Sub(firsts[i]); late > interval {
					t.Fatalf("interval %v, %s: save %d at %v is %v after its first event: more than the interval", interval, pattern.name, i, s, late)
				}
				if i == 0 {
					continue
				}
				gap := s.Sub(saves[i-1])
				if gap < interval {
					t.Fatalf("interval %v, %s: saves %d and %d are %v apart: less than the interval", interval, pattern.name, i-1, i, gap)
				}
				if pattern.name == "continuous" && aligned(interval) && gap != interval {
					t.Fatalf("interval %v, continuous events: saves %d and %d are %v apart, want exactly the interval", interval, i-1, i, gap)
				}
			}
		}
	}
}

// TestCheckpointDelayCommits: 100 busy rooms whose first events are spread
// over the interval save at no more than checkpointSlots instants per
// interval (a store's batches), where unaligned they would save at 100.
func TestCheckpointDelayCommits(t *testing.T) {
	interval := time.Second
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Unix(1_800_000_000, 0)
	end := start.Add(20 * interval)
	instants := make(map[time.Time]bool)
	for range 100 {
		var events []time.Time
		for e := start.Add(time.Duration(rng.Int64N(int64(interval)))); e.Before(end); e = e.Add(time.Millisecond) {
			events = append(events, e)
		}
		saves, _ := checkpointRun(interval, events)
		for _, s := range saves {
			instants[s] = true
		}
	}
	// The saves run from start+interval to end+interval.
	if max := 21 * checkpointSlots; len(instants) > max {
		t.Fatalf("100 rooms saved at %d distinct instants over 21 intervals; want at most %d (%d slots an interval)", len(instants), max, checkpointSlots)
	}
}
