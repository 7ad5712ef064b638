package wasmhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// counterState is what testdata/counter.wat broadcasts after every event.
type counterState struct {
	Mem, Global, Pages, Clients, Inits, Marker uint32
}

// lastCounter decodes the last message the counter guest sent in room.
func lastCounter(t testing.TB, room *stateroomtest.Room) counterState {
	t.Helper()
	if len(room.Sent) == 0 {
		t.Fatal("the counter guest sent nothing")
	}
	b := room.Sent[len(room.Sent)-1].Payload.Data
	if len(b) != 24 {
		t.Fatalf("the counter guest sent %x, want six u32s", b)
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	return counterState{u(0), u(1), u(2), u(3), u(4), u(5)}
}

func text(s string) stateroom.MessageEvent {
	return stateroom.MessageEvent{Client: 1, Payload: stateroom.Text(s)}
}

// snapshotOf returns s's snapshot, which must succeed.
func snapshotOf(t testing.TB, s *service) []byte {
	t.Helper()
	b, err := s.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return b
}

// kindOf returns the kind a snapshot's header names.
func kindOf(t testing.TB, b []byte) string {
	t.Helper()
	snap, err := decodeSnapshot(b)
	if err != nil {
		t.Fatalf("decoding the snapshot: %v", err)
	}
	return snap.kind
}

// TestSnapshotRawRoundTrip: a module without the snapshot exports is
// snapshotted as raw memory; a fresh instance that restores it goes on
// with the counter in memory, the counter in a mutable global, the grown
// memory and its contents. Init is not delivered again (the guest had it).
// From this process (a hibernated room waking), the clients the guest knew
// of are still there; from another process (a restart), they get their
// Disconnect in place of the Init.
func TestSnapshotRawRoundTrip(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	s := newService(t, m)
	room := newRoom()
	s.Init(room, stateroom.InitEvent{})
	for _, id := range []stateroom.ClientID{room.Connect(), room.Connect()} {
		s.Connect(room, stateroom.ConnectEvent{Client: id})
	}
	for _, cmd := range []string{"i", "i", "g", "i", "g"} {
		s.Message(room, text(cmd))
	}
	want := counterState{Mem: 3, Global: 3, Pages: 3, Clients: 2, Inits: 1, Marker: 1002}
	if got := lastCounter(t, room); got != want {
		t.Fatalf("before the snapshot: %+v, want %+v", got, want)
	}
	snap := snapshotOf(t, s)
	if k := kindOf(t, snap); k != kindSparse {
		t.Fatalf("snapshot kind %q, want %q", k, kindSparse)
	}
	// Pages 0 (the counters, the allocator's buffers), 1 and 2 (the
	// markers): nothing else differs from the base image.
	decoded, _ := decodeSnapshot(snap)
	if len(decoded.raw.stored) != 3 {
		t.Errorf("stored pages %v, want 0, 1 and 2", decoded.raw.stored)
	}
	t.Logf("raw snapshot of 3 pages: %d bytes", len(snap))

	t.Run("this process", func(t *testing.T) {
		// Another Module of the same bytes, as after `stateroom dev`
		// reloads an unchanged module; a hibernated room's wake is the
		// same with one Module.
		s2 := newService(t, loadGuest(t, "counter", testOptions()))
		if err := s2.Restore(snap); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		room2 := newRoom()
		s2.Init(room2, stateroom.InitEvent{Restored: true})
		if len(room2.Sent) != 0 {
			t.Fatalf("Init after a raw restore sent %v, want nothing: no second Init, and the clients are still there", room2.Sent)
		}
		s2.Message(room2, text("i"))
		want := counterState{Mem: 4, Global: 4, Pages: 3, Clients: 2, Inits: 1, Marker: 1002}
		if got := lastCounter(t, room2); got != want {
			t.Fatalf("an event after the restore: %+v, want %+v", got, want)
		}
	})
	t.Run("another process", func(t *testing.T) {
		r := decoded.raw
		r.process[0] ^= 1
		s2 := newService(t, m)
		if err := s2.Restore(encodeRawForTest(r)); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		room2 := newRoom()
		s2.Init(room2, stateroom.InitEvent{Restored: true})
		// Two Disconnects, no Init: the guest's client count drops to 0
		// and its Init count stays 1.
		if len(room2.Sent) != 2 {
			t.Fatalf("Init after a raw restore sent %v, want the replies to two Disconnects", room2.Sent)
		}
		want := counterState{Mem: 3, Global: 3, Pages: 3, Clients: 0, Inits: 1, Marker: 1002}
		if got := lastCounter(t, room2); got != want {
			t.Fatalf("after the restore: %+v, want %+v", got, want)
		}
		// The restored instance snapshots again, with no client left.
		again, err := decodeSnapshot(snapshotOf(t, s2))
		if err != nil || len(again.raw.clients) != 0 || again.raw.pages != 3 {
			t.Errorf("second snapshot: %+v, %v; want 3 pages and no clients", again.raw, err)
		}
	})
}

// TestSnapshotRawUnchanged: an instance that differs from the base image
// only where the host wrote the room id and its event buffer stores one
// page, and restoring it is exact.
func TestSnapshotRawUnchanged(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	s := newService(t, m)
	snap := snapshotOf(t, s)
	raw, _ := decodeSnapshot(snap)
	if raw.raw.pages != 1 || len(raw.raw.stored) > 1 {
		t.Errorf("fresh instance: %d pages, stored %v; want 1 page and at most one stored", raw.raw.pages, raw.raw.stored)
	}
	s2 := newService(t, m)
	if err := s2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	room := newRoom()
	s2.Init(room, stateroom.InitEvent{Restored: true})
	if len(room.Sent) != 0 {
		t.Errorf("Init after restoring an instance that never had Init sent %v", room.Sent)
	}
	s2.Message(room, text("i"))
	if got := lastCounter(t, room); got != (counterState{Mem: 1, Global: 1, Pages: 1}) {
		t.Errorf("after the restore: %+v", got)
	}
}

// TestSnapshotRawOtherModule: a raw snapshot is refused by any other
// module with stateroom.ErrIncompatibleSnapshot (the room starts fresh),
// logged once for the room with what to do; the refusing instance is
// unchanged.
func TestSnapshotRawOtherModule(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	s := newService(t, m)
	room := newRoom()
	s.Init(room, stateroom.InitEvent{})
	s.Message(room, text("i"))
	snap := snapshotOf(t, s)

	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	rebuilt, err := Compile(context.Background(), variant(t, "counter", "(i32.const 1000)", "(i32.const 2000)"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close(context.Background())
	s2 := newService(t, rebuilt)
	err = s2.Restore(snap)
	if !errors.Is(err, stateroom.ErrIncompatibleSnapshot) || !errors.Is(err, ErrRestore) {
		t.Fatalf("Restore into another module: %v, want ErrIncompatibleSnapshot and ErrRestore", err)
	}
	lines := logs.lines("raw memory", "room=test-room")
	if len(lines) != 1 {
		t.Fatalf("log lines about it: %q, want one", lines)
	}
	wantInMessage(t, lines[0], abi.ExportSnapshot, abi.ExportRestore, "stateroom.Snapshotter")
	// The instance is as it was: a room starts on it as usual.
	room2 := newRoom()
	s2.Init(room2, stateroom.InitEvent{})
	if got := lastCounter(t, room2); got != (counterState{Pages: 1, Inits: 1}) {
		t.Errorf("the instance that refused: %+v, want a fresh one", got)
	}
}

// TestSnapshotRawMemoryLimit: a raw snapshot of more memory than the
// instance may have is refused (not as incompatible: the state is sound,
// and an operator may raise the limit), and the instance is unchanged.
func TestSnapshotRawMemoryLimit(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 8 * pageSize
	big := loadGuest(t, "counter", opts)
	s := newService(t, big)
	room := newRoom()
	for range 5 {
		s.Message(room, text("g"))
	}
	snap := snapshotOf(t, s)

	opts.MemoryLimit = 4 * pageSize
	small := loadGuest(t, "counter", opts)
	s2 := newService(t, small)
	err := s2.Restore(snap)
	if err == nil || errors.Is(err, stateroom.ErrIncompatibleSnapshot) || !errors.Is(err, ErrRestore) {
		t.Fatalf("Restore of 6 pages under a 4-page limit: %v, want ErrRestore only", err)
	}
	wantInMessage(t, err.Error(), "6 pages", "MemoryLimit")
	if got := s2.pages(); got != 1 {
		t.Errorf("the refusing instance has %d pages, want 1", got)
	}
}

// TestSnapshotRawClock: a restored instance's monotonic clock goes on
// from the snapshot's reading plus the time since by the wall clock, not
// from this process's clock, and never goes back.
func TestSnapshotRawClock(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	decoded, err := decodeSnapshot(snapshotOf(t, newService(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		clock, since time.Duration // the snapshot's reading, and how long ago it was taken
		want         time.Duration
	}{
		{"a day's uptime, an hour ago", 24 * time.Hour, time.Hour, 25 * time.Hour},
		{"from the future", time.Hour, -time.Hour, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := decoded.raw
			r.clock = int64(c.clock)
			r.wall = time.Now().Add(-c.since).UnixNano()
			s := newService(t, m)
			if err := s.Restore(encodeRawForTest(r)); err != nil {
				t.Fatal(err)
			}
			if d := time.Duration(s.nanotime()) - c.want; d < 0 || d > time.Minute {
				t.Errorf("the restored clock reads %v, want %v", time.Duration(s.nanotime()), c.want)
			}
		})
	}
}

// encodeRawForTest re-encodes a decoded raw snapshot, with a checksum.
func encodeRawForTest(r rawSnapshot) []byte {
	return appendChecksum(append(appendRawHead(nil, &r), r.data...))
}

// withChecksum replaces the last four bytes of b (at least four) with the
// checksum of the rest, so that damaged bytes reach the decoder's later
// checks.
func withChecksum(b []byte) []byte {
	if len(b) < checksumSize {
		return b
	}
	body := bytes.Clone(b[:len(b)-checksumSize])
	return binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE(body))
}

// TestRestoreDamaged: truncated, flipped and forged snapshots of both
// kinds are refused with ErrRestore, never ErrIncompatibleSnapshot (a
// damaged record is set aside, not overwritten), and never panic. Bytes
// whose checksum fails leave the instance unchanged.
func TestRestoreDamaged(t *testing.T) {
	m := loadGuest(t, "counter", testOptions())
	src := newService(t, m)
	room := newRoom()
	src.Message(room, text("g"))
	src.Message(room, text("i"))
	raw := snapshotOf(t, src)
	g := loadGuest(t, "snapguest", testOptions())
	guest := snapshotOf(t, newService(t, g))

	check := func(t *testing.T, mod *Module, b []byte, unchanged bool) {
		t.Helper()
		s := newService(t, mod)
		before := s.pages()
		err := s.Restore(b)
		if err == nil {
			return // a flip the decoder cannot see (in the page data, say) restores whatever it says
		}
		if !errors.Is(err, ErrRestore) {
			t.Fatalf("Restore(%x…): %v, want ErrRestore", b[:min(len(b), 16)], err)
		}
		if errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			// Only a sound raw snapshot of another module is that.
			if snap, derr := decodeSnapshot(b); derr != nil || (snap.kind != kindSparse && snap.kind != kindMemory) || snap.raw.hash == mod.hash {
				t.Fatalf("Restore(%x…): %v; a damaged snapshot must be set aside, not taken as incompatible", b[:min(len(b), 16)], err)
			}
		}
		if unchanged && (s.pages() != before || s.broken != nil) {
			t.Fatalf("Restore(%x…) failed (%v) and changed the instance", b[:min(len(b), 16)], err)
		}
	}
	for name, c := range map[string]struct {
		mod  *Module
		snap []byte
	}{"raw": {m, raw}, "guest": {g, guest}} {
		t.Run(name+"/truncated", func(t *testing.T) {
			for n := range len(c.snap) {
				check(t, c.mod, c.snap[:n], true)
			}
		})
		t.Run(name+"/flipped", func(t *testing.T) {
			for i := range c.snap {
				b := bytes.Clone(c.snap)
				b[i] ^= 0x41
				check(t, c.mod, b, true)
			}
		})
		t.Run(name+"/flipped, checksum fixed", func(t *testing.T) {
			for i := range len(c.snap) - checksumSize {
				b := bytes.Clone(c.snap)
				b[i] ^= 0x41
				check(t, c.mod, withChecksum(b), false)
			}
		})
	}
	t.Run("page data cut short", func(t *testing.T) {
		snap, _ := decodeSnapshot(raw)
		r := snap.raw
		r.data = r.data[:len(r.data)/2]
		s := newService(t, m)
		err := s.Restore(encodeRawForTest(r))
		if !errors.Is(err, ErrRestore) || !errors.Is(err, errDamaged) {
			t.Fatalf("Restore: %v, want a damaged snapshot", err)
		}
		// The memory changed halfway: the next event faults.
		mustFault(t, "wasm fault", ErrRestore, func() { s.Init(newRoom(), stateroom.InitEvent{Restored: true}) })
	})
	t.Run("messages", func(t *testing.T) {
		for _, c := range []struct {
			b    []byte
			want string
		}{
			{nil, "too short"},
			{[]byte("SRoo\x01\x00\x00\x00\x00\x00"), "magic"},
			{withChecksum([]byte("SRwm\x02\x05guest\x00\x00\x00\x00")), "format version 2"},
			{withChecksum([]byte("SRwm\x01\x04disk\x00\x00\x00\x00")), `unknown kind "disk"`},
			{append(bytes.Clone(raw[:len(raw)-1]), raw[len(raw)-1]^1), "checksum"},
		} {
			err := newService(t, m).Restore(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Restore(%q): %v, want an error about %s", c.b, err, c.want)
			}
		}
	})
}

// TestSnapshotGuest: a module with the snapshot exports gives its own
// bytes, under the host's "guest" header, and takes them back through
// stateroom_restore before Init, which it then gets as usual.
func TestSnapshotGuest(t *testing.T) {
	m := loadGuest(t, "snapguest", testOptions())
	s := newService(t, m)
	room := newRoom()
	for range 3 {
		s.Message(room, text("i"))
	}
	snap := snapshotOf(t, s)
	if k := kindOf(t, snap); k != kindGuest {
		t.Fatalf("snapshot kind %q, want %q", k, kindGuest)
	}
	if got, _ := decodeSnapshot(snap); !bytes.Equal(got.guest, []byte{3, 0, 0, 0}) {
		t.Fatalf("the guest's bytes are %x, want its counter 03000000", got.guest)
	}

	// A rebuilt module (another hash) takes it: the guest's bytes cross
	// builds.
	rebuilt, err := Compile(context.Background(), variant(t, "snapguest", "on purpose", "deliberately"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close(context.Background())
	s2 := newService(t, rebuilt)
	if err := s2.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	room2 := newRoom()
	s2.Init(room2, stateroom.InitEvent{Restored: true})
	s2.Message(room2, text("i"))
	if got := room2.Sent[len(room2.Sent)-1].Payload.Data; !bytes.Equal(got, []byte{4, 0, 0, 0}) {
		t.Errorf("after the restore and one increment the counter is %x, want 04000000", got)
	}
	if n := len(room2.Sent); n != 2 {
		t.Errorf("%d messages after Init and one event, want 2 (Init is delivered)", n)
	}
}

// TestSnapshotGuestAnswers covers what stateroom_snapshot and
// stateroom_restore may answer, and the faults of each.
func TestSnapshotGuestAnswers(t *testing.T) {
	var logs logBuffer
	opts := testOptions()
	opts.EventBudget = 200 * time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := loadGuest(t, "snapguest", opts)
	counter := loadGuest(t, "counter", testOptions())

	snapWith := func(t *testing.T, mode string) (*service, []byte, error) {
		s := newService(t, m)
		room := newRoom()
		s.Message(room, text("i"))
		s.Message(room, text(mode))
		b, err := s.Snapshot()
		return s, b, err
	}
	t.Run("none: raw memory", func(t *testing.T) {
		s, b, err := snapWith(t, "n")
		if err != nil || kindOf(t, b) != kindSparse {
			t.Fatalf("Snapshot: kind %q, %v; want raw memory", kindOf(t, b), err)
		}
		s2 := newService(t, m)
		if err := s2.Restore(b); err != nil {
			t.Fatal(err)
		}
		room := newRoom()
		s2.Message(room, text("i"))
		if got := room.Sent[0].Payload.Data; !bytes.Equal(got, []byte{2, 0, 0, 0}) {
			t.Errorf("counter %x after the raw restore and one increment, want 02000000", got)
		}
		_ = s
	})
	t.Run("failed", func(t *testing.T) {
		s, _, err := snapWith(t, "f")
		if !errors.Is(err, ErrSnapshot) {
			t.Fatalf("Snapshot: %v, want ErrSnapshot", err)
		}
		wantInMessage(t, err.Error(), "returned -1", "snapshot failed on purpose")
		room := newRoom()
		if f := catchFault(t, func() { s.Message(room, text("i")) }); f != nil {
			t.Errorf("a failed snapshot faulted the room: %v", f)
		}
	})
	for mode, want := range map[string]string{"o": "past the end", "a": "not the address"} {
		t.Run("bad pointer "+mode, func(t *testing.T) {
			_, _, err := snapWith(t, mode)
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("Snapshot: %v, want ErrSnapshot", err)
			}
			wantInMessage(t, err.Error(), want)
		})
	}
	t.Run("snapshot traps", func(t *testing.T) {
		s, _, err := snapWith(t, "t")
		if !errors.Is(err, ErrSnapshot) || !errors.Is(err, ErrTrap) {
			t.Fatalf("Snapshot: %v, want ErrSnapshot and ErrTrap", err)
		}
		// The guest stopped halfway: its next event faults the room.
		mustFault(t, "wasm trap", ErrTrap, func() { s.Message(newRoom(), text("i")) })
		if _, err := s.Snapshot(); !errors.Is(err, ErrSnapshot) {
			t.Errorf("Snapshot of a faulted instance: %v", err)
		}
	})
	t.Run("budget", func(t *testing.T) {
		s := newService(t, m)
		s.Message(newRoom(), text("l"))
		var err error
		withinBudget(t, m, func() { _, err = s.Snapshot() })()
		if !errors.Is(err, ErrSnapshot) || !errors.Is(err, ErrBudget) {
			t.Fatalf("Snapshot: %v, want ErrSnapshot and ErrBudget", err)
		}
		mustFault(t, "wasm event budget exceeded", ErrBudget, func() { s.Message(newRoom(), text("i")) })
	})

	guestBytes := func(v ...byte) []byte {
		return appendChecksum(append(appendHeader(nil, kindGuest), v...))
	}
	t.Run("refused", func(t *testing.T) {
		s := newService(t, m)
		err := s.Restore(guestBytes(1, 2, 3))
		if !errors.Is(err, ErrRestore) || errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			t.Fatalf("Restore: %v, want ErrRestore only", err)
		}
		wantInMessage(t, err.Error(), "refused", "returned 1", "restore: want 4 bytes")
	})
	t.Run("empty", func(t *testing.T) {
		err := newService(t, m).Restore(guestBytes())
		if !errors.Is(err, ErrRestore) || !strings.Contains(err.Error(), "returned 1") {
			t.Fatalf("Restore of no bytes: %v, want the guest's refusal", err)
		}
	})
	t.Run("incompatible", func(t *testing.T) {
		err := newService(t, m).Restore(guestBytes(0xff, 0xff, 0, 0))
		if !errors.Is(err, ErrRestore) || !errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			t.Fatalf("Restore: %v, want ErrIncompatibleSnapshot", err)
		}
	})
	t.Run("restore traps", func(t *testing.T) {
		s := newService(t, m)
		err := s.Restore(guestBytes(0xad, 0xde, 0, 0))
		if !errors.Is(err, ErrRestore) || !errors.Is(err, ErrTrap) || errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			t.Fatalf("Restore: %v, want ErrRestore and ErrTrap", err)
		}
		mustFault(t, "wasm trap", ErrTrap, func() { s.Init(newRoom(), stateroom.InitEvent{}) })
	})
	t.Run("too big", func(t *testing.T) {
		small := opts
		small.MemoryLimit = 2 * pageSize
		sm := loadGuest(t, "snapguest", small)
		s := newService(t, sm)
		err := s.Restore(guestBytes(make([]byte, 3*pageSize)...))
		if !errors.Is(err, ErrRestore) || !strings.Contains(err.Error(), "MemoryLimit") {
			t.Fatalf("Restore of 192 KiB under a 128 KiB limit: %v", err)
		}
		// Just under the limit: the guest's malloc cannot grow its
		// memory and traps.
		s = newService(t, sm)
		err = s.Restore(guestBytes(make([]byte, 2*pageSize-8)...))
		if !errors.Is(err, ErrRestore) || !errors.Is(err, ErrTrap) {
			t.Fatalf("Restore of nearly 128 KiB under a 128 KiB limit: %v", err)
		}
	})
	t.Run("across paths", func(t *testing.T) {
		// The guest's own bytes cannot go into a module without the
		// exports, nor raw memory into another module.
		_, guest, err := snapWith(t, "s")
		if err != nil {
			t.Fatal(err)
		}
		if err := newService(t, counter).Restore(guest); !errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			t.Errorf("a guest's snapshot into a module without the exports: %v, want ErrIncompatibleSnapshot", err)
		}
		raw := snapshotOf(t, newService(t, counter))
		if err := newService(t, m).Restore(raw); !errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			t.Errorf("another module's raw memory into a module with the exports: %v, want ErrIncompatibleSnapshot", err)
		}
		if lines := logs.lines("raw memory", "this module exports stateroom_snapshot and stateroom_restore"); len(lines) != 1 {
			t.Errorf("log lines about it: %q, want one saying that this module's state will cross builds", lines)
		}
	})
}

// TestSnapshotExportsChecked: the snapshot exports are checked at load, not
// at first use: a wrong signature, or one export without the other, is
// ErrExport naming the export, the signature wanted and what to do.
func TestSnapshotExportsChecked(t *testing.T) {
	for _, c := range []struct {
		name string
		old  string
		new  string
		want []string
	}{
		{"snapshot returns i64", "(func (export \"stateroom_snapshot\") (result i32)", "(func (export \"stateroom_snapshot\") (result i64) (i64.const 0) return)\n  (func $unused (result i32)",
			[]string{"stateroom_snapshot() -> i64", "want stateroom_snapshot() -> i32", "(ptr, len) pair", "Extension: snapshots", "or neither"}},
		{"restore without result", "(func (export \"stateroom_restore\") (param $ptr i32) (param $len i32) (result i32)", "(func (export \"stateroom_restore\") (param i32 i32))\n  (func $unused (param $ptr i32) (param $len i32) (result i32)",
			[]string{"stateroom_restore(i32, i32)", "want stateroom_restore(i32, i32) -> i32"}},
		{"snapshot alone", "(func (export \"stateroom_restore\")", "(func",
			[]string{"stateroom_snapshot is exported without stateroom_restore", "or neither"}},
		{"restore alone", "(func (export \"stateroom_snapshot\")", "(func",
			[]string{"stateroom_restore is exported without stateroom_snapshot"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := loadError(t, variant(t, "snapguest", c.old, c.new), testOptions(), ErrExport)
			wantInMessage(t, msg, c.want...)
		})
	}
}

// TestExportGlobals: the host exports exactly the module's mutable
// globals, after the imported ones in the index space, and leaves a module
// without any as it is.
func TestExportGlobals(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	var names []string
	for _, g := range m.globals {
		names = append(names, g.name)
	}
	// relay.wat: two immutable version globals, then $heap and $live.
	if strings.Join(names, " ") != "stateroom:global:2 stateroom:global:3" {
		t.Errorf("exported %q, want globals 2 and 3", names)
	}
	if m.rawErr != nil {
		t.Errorf("rawErr: %v", m.rawErr)
	}

	imported := []byte(`(module
  (import "env" "g" (global i32))
  (import "env" "h" (global (mut i64)))
  (global $a i32 (i32.const 1))
  (global $b (mut f64) (f64.const 2))
  (global $c (mut i32) (global.get 0))
  (export "a" (global $a)))`)
	bin, err := watToWasm(context.Background(), imported, "imported")
	if err != nil {
		t.Fatal(err)
	}
	out, gs, err := exportGlobals(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs[0].index != 3 || gs[0].typ != 0x7c || gs[1].index != 4 {
		t.Errorf("globals %+v, want 3 (f64) and 4", gs)
	}
	if len(out) <= len(bin) {
		t.Error("the module was not patched")
	}

	none, err := watToWasm(context.Background(), []byte(`(module (global $a i32 (i32.const 1)) (export "a" (global $a)))`), "none")
	if err != nil {
		t.Fatal(err)
	}
	if out, gs, err := exportGlobals(none); err != nil || len(gs) != 0 || !bytes.Equal(out, none) {
		t.Errorf("a module without mutable globals: %d globals, changed %v, %v", len(gs), !bytes.Equal(out, none), err)
	}
}

// FuzzExportGlobals: no input makes exportGlobals panic, and what it
// returns for a module that compiles still compiles.
func FuzzExportGlobals(f *testing.F) {
	for _, name := range []string{"relay", "counter", "snapguest", "reactor"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, gs, err := exportGlobals(bin)
		if err != nil {
			if !errors.Is(err, errNoPatch) {
				t.Fatalf("error %v does not wrap errNoPatch", err)
			}
			return
		}
		if len(gs) == 0 {
			if !bytes.Equal(out, bin) {
				t.Fatal("no globals, yet the module changed")
			}
			return
		}
		if cm, err := compileModule(ctx, rt, bin); err == nil {
			_ = cm.Close(ctx)
			cm, err := compileModule(ctx, rt, out)
			if err != nil {
				t.Fatalf("the module compiles, and with its %d mutable globals exported it does not: %v", len(gs), err)
			}
			_ = cm.Close(ctx)
		}
	})
}

// FuzzRestore: whatever bytes a Restore gets, of either module kind, it
// returns an error or restores, and never panics; an instance that restored
// runs an event or faults cleanly. Each input is also tried with its
// checksum fixed, so that the fuzzer reaches the decoder behind it.
func FuzzRestore(f *testing.F) {
	counter, err := Load(context.Background(), "testdata/counter.wasm", testOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = counter.Close(context.Background()) })
	guest, err := Load(context.Background(), "testdata/snapguest.wasm", testOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = guest.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []*Module{counter, guest} {
			for _, b := range [][]byte{data, withChecksum(data)} {
				s, err := m.NewService("fuzz")
				if err != nil {
					t.Fatal(err)
				}
				svc := s.(*service)
				if err := svc.Restore(b); err != nil {
					if !errors.Is(err, ErrRestore) {
						t.Fatalf("Restore error %v does not wrap ErrRestore", err)
					}
				} else {
					catchFault(t, func() {
						svc.Init(newRoom(), stateroom.InitEvent{Restored: true})
						svc.Message(newRoom(), text("i"))
					})
				}
				_ = svc.Close()
			}
		}
	})
}

// TestFuzzRestoreSeeds checks that the committed seeds of FuzzRestore that
// are whole snapshots still restore, so that the fuzzer starts from
// snapshots of the current format and test guests. With
// STATEROOM_WRITE_SEEDS=1 it writes them afresh first:
//
//	STATEROOM_WRITE_SEEDS=1 go test -run TestFuzzRestoreSeeds ./wasmhost
func TestFuzzRestoreSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRestore")
	counter := loadGuest(t, "counter", testOptions())
	guest := loadGuest(t, "snapguest", testOptions())
	if os.Getenv("STATEROOM_WRITE_SEEDS") != "" {
		writeRestoreSeeds(t, dir, counter, guest)
	}
	for name, m := range map[string]*Module{"raw": counter, "raw-fresh": counter, "raw-other-process": counter, "guest": guest} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		q, ok := strings.CutPrefix(lines[1], "[]byte(")
		if !ok || len(lines) < 2 {
			t.Fatalf("seed %s is not in the corpus format", name)
		}
		snap, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		if err := newService(t, m).Restore([]byte(snap)); err != nil {
			t.Errorf("seed %s does not restore (%v): write the seeds afresh (see the test's comment)", name, err)
		}
	}
}

// writeRestoreSeeds writes the seeds of FuzzRestore: whole snapshots of
// both kinds and a few damaged or refused ones.
func writeRestoreSeeds(t *testing.T, dir string, counter, guest *Module) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newService(t, counter)
	room := newRoom()
	s.Init(room, stateroom.InitEvent{})
	id := room.Connect()
	s.Connect(room, stateroom.ConnectEvent{Client: id})
	s.Message(room, text("i"))
	s.Message(room, text("g"))
	raw := snapshotOf(t, s)
	write("raw", raw)
	d, _ := decodeSnapshot(raw)
	other := d.raw
	other.process = [8]byte{}
	write("raw-other-process", encodeRawForTest(other))
	write("raw-fresh", snapshotOf(t, newService(t, counter)))
	write("raw-truncated", raw[:len(raw)/2])
	gs := newService(t, guest)
	gs.Message(newRoom(), text("i"))
	write("guest", snapshotOf(t, gs))
	write("guest-trap", appendChecksum(append(appendHeader(nil, kindGuest), 0xad, 0xde, 0, 0)))
	write("guest-incompatible", appendChecksum(append(appendHeader(nil, kindGuest), 0xff, 0xff, 0, 0)))
	write("guest-empty", appendChecksum(appendHeader(nil, kindGuest)))
	write("empty", nil)
	write("unknown-kind", appendChecksum(appendHeader(nil, "disk")))
}

// TestSnapshotRawUnavailable: a module whose state a raw snapshot cannot
// carry (a mutable v128 global) loads and runs as before; its Snapshot
// fails with ErrSnapshot, saying why and what to do.
func TestSnapshotRawUnavailable(t *testing.T) {
	src := variant(t, "counter", "(global $count (mut i32) (i32.const 0))",
		"(global $count (mut i32) (i32.const 0))\n  (global $wide (mut v128) (v128.const i64x2 0 0))")
	m, err := Compile(context.Background(), src, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	s := newService(t, m)
	room := newRoom()
	s.Message(room, text("i"))
	if got := lastCounter(t, room); got.Mem != 1 {
		t.Fatalf("the module does not run: %+v", got)
	}
	_, err = s.Snapshot()
	if !errors.Is(err, ErrSnapshot) {
		t.Fatalf("Snapshot: %v, want ErrSnapshot", err)
	}
	wantInMessage(t, err.Error(), "v128", abi.ExportSnapshot)
}
