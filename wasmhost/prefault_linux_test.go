package wasmhost

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// learntRuns loads guest, starts one room (the probe and that room teach
// the module what a start writes: prefaultStart) and returns the module
// and the runs learnt.
func learntRuns(t *testing.T, guest string) (*Module, *prefaultRuns) {
	t.Helper()
	m := loadGuest(t, guest, testOptions())
	if m.image == nil || m.image.file == nil {
		t.Fatalf("%s.wasm's image is not shared through a file", guest)
	}
	if pagemap() == nil {
		t.Skip("no /proc/self/pagemap: nothing is learnt")
	}
	first := newService(t, m)
	if first.linear.prefaulted {
		t.Error("the first room was pre-faulted before anything was learnt")
	}
	runs := m.image.file.prefault.runs.Load()
	if runs == nil {
		t.Fatal("nothing learnt after the probe and the first room")
	}
	return m, runs
}

// TestPrefaultLearnt checks what bigdata.wasm's start is learnt to write:
// the page of writeRoomID's allocation (its bump allocator starts at
// 4096), and nothing else; and that the next room gets it pre-faulted.
func TestPrefaultLearnt(t *testing.T) {
	m, runs := learntRuns(t, "bigdata")
	want := []pageRun{{off: 4096, n: uintptr(hostPageSize)}}
	if len(runs.writes) != 1 || runs.writes[0] != want[0] {
		t.Errorf("learnt writes %v, want %v", runs.writes, want)
	}
	s := newService(t, m)
	if !s.linear.prefaulted {
		t.Error("the second room was not pre-faulted")
	}
}

// TestPrefaultSound checks that the learnt set is only ever a hint. A room
// whose start writes a page the set lacks (here the set holds another
// page only) still starts and runs, with the memory of a room that was
// not pre-faulted; and a page pre-faulted that the room never writes is
// the room's own, private page (4 KiB more Rss in its image mapping), which
// cleanPages counts as written, so that raw snapshots compare it rather
// than take it for the image's.
func TestPrefaultSound(t *testing.T) {
	m, runs := learntRuns(t, "bigdata")
	const unwritten = 20 // bigdata's data is in pages 8 to 31; a start touches none of 16 to 31
	m.image.file.prefault.runs.Store(&prefaultRuns{writes: []pageRun{{off: unwritten * 4096, n: uintptr(hostPageSize)}}})
	s := newService(t, m)
	rss := mappingRss(t, uintptr(memoryBase(t, s))) // before anything reads the memory
	m.image.file.prefault.runs.Store(runs)
	plain := newService(t, m) // pre-faulted with what was learnt
	plainRss := mappingRss(t, uintptr(memoryBase(t, plain)))
	if !s.linear.prefaulted {
		t.Fatal("the room was not pre-faulted")
	}
	if rss != plainRss+int64(hostPageSize) {
		t.Errorf("the image mapping of a room pre-faulted with a page it does not write holds %d KiB, want %d KiB (4 KiB more than another's)", rss>>10, (plainRss+int64(hostPageSize))>>10)
	}
	if c := s.cleanPages(s.pages()); c.clean == nil || c.clean[unwritten] {
		t.Errorf("cleanPages counts the pre-faulted page %d as clean (%v); it is the room's own", unwritten, c.clean != nil)
	}
	if c := plain.cleanPages(plain.pages()); c.clean == nil || !c.clean[unwritten] {
		t.Errorf("cleanPages counts page %d of a room that neither wrote nor pre-faulted it as written", unwritten)
	}
	if !bytes.Equal(memoryBytes(t, s), memoryBytes(t, plain)) {
		t.Error("a room pre-faulted with a page its start does not write starts with other memory")
	}
	room := newRoom()
	command(s, room, "i")
	command(plain, room, "i")
	if !bytes.Equal(memoryBytes(t, s), memoryBytes(t, plain)) {
		t.Error("after an event, the memory of a room pre-faulted with a page its start does not write differs")
	}
}

// TestPrefaultFallback checks that a kernel without MADV_POPULATE_WRITE
// (madvise fails with EINVAL before Linux 5.14) leaves rooms as they were
// before pre-faulting: started, with the same memory, and that the
// module then stops asking; while another failure (out of memory) only
// skips that room's pre-faulting.
func TestPrefaultFallback(t *testing.T) {
	m, runs := learntRuns(t, "bigdata")
	want := memoryBytes(t, newService(t, m))
	calls := 0
	saved := madvise
	defer func() { madvise = saved }()
	fail := func(err error) {
		madvise = func([]byte, int) error { calls++; return err }
	}

	fail(unix.ENOMEM)
	s := newService(t, m)
	if s.linear.prefaulted || calls != 1 {
		t.Errorf("madvise failing with ENOMEM: pre-faulted %v after %d calls, want false after 1", s.linear.prefaulted, calls)
	}
	if !bytes.Equal(memoryBytes(t, s), want) {
		t.Error("a room whose pre-faulting failed starts with other memory")
	}
	if m.image.file.prefault.runs.Load() != runs {
		t.Error("a failure other than EINVAL stopped pre-faulting for the module")
	}

	calls = 0
	fail(unix.EINVAL)
	for i := range 2 {
		s := newService(t, m)
		if s.linear.prefaulted {
			t.Errorf("room %d: pre-faulted though madvise fails", i)
		}
		if !bytes.Equal(memoryBytes(t, s), want) {
			t.Errorf("room %d with madvise failing with EINVAL starts with other memory", i)
		}
		command(s, newRoom(), "i")
	}
	if calls != 1 {
		t.Errorf("madvise called %d times for two rooms after EINVAL, want 1: the module goes on asking a kernel that cannot", calls)
	}
	if got := m.image.file.prefault.runs.Load(); len(got.writes) != 0 {
		t.Errorf("after EINVAL the module still has %v to pre-fault", got.writes)
	}
}

// TestPrefaultLearnsOnce checks that only one room learns what a start
// writes, and never one that was pre-faulted (its pre-faulted pages look
// written whether its start wrote them or not).
func TestPrefaultLearnsOnce(t *testing.T) {
	m, _ := learntRuns(t, "bigdata")
	st := &m.image.file.prefault
	st.runs.Store(nil) // as if not learnt yet, but the learner has been
	_ = newService(t, m)
	if st.runs.Load() != nil {
		t.Error("a second room learnt again")
	}
	st.learn.Store(false)
	st.runs.Store(&prefaultRuns{writes: []pageRun{{off: 20 * 4096, n: uintptr(hostPageSize)}}})
	s := newService(t, m)
	st.runs.Store(nil)
	st.learn.Store(false)
	m.image.file.learnStart(s, false)
	if st.runs.Load() != nil {
		t.Error("a pre-faulted room taught what a start writes")
	}

	// What is learnt is what the probe's start wrote too: with a probe
	// that (as if) wrote nothing, a room that wrote page 1 teaches
	// nothing.
	st.learn.Store(false)
	st.mu.Lock()
	st.probe = make([]bool, len(st.probe))
	st.mu.Unlock()
	_ = newService(t, m)
	if got := st.runs.Load(); got == nil || len(got.writes) != 0 {
		t.Errorf("learnt %v from a room alone; want nothing the probe did not write", got)
	}
}
