package guest

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// durable is a stateroom.Snapshotter whose snapshot and restore do what
// its fields say.
type durable struct {
	stateroom.BaseService
	state      []byte
	snapErr    error
	restoreErr error
	panics     bool
	inits      []stateroom.InitEvent
}

func (d *durable) Init(_ stateroom.Room, ev stateroom.InitEvent) { d.inits = append(d.inits, ev) }

func (d *durable) Snapshot() ([]byte, error) {
	if d.panics {
		panic("durable: asked to panic")
	}
	return d.state, d.snapErr
}

func (d *durable) Restore(b []byte) error {
	if d.panics {
		panic(errors.New("durable: asked to panic"))
	}
	if d.restoreErr != nil {
		return d.restoreErr
	}
	d.state = b
	return nil
}

// newSnapGuest returns a guest running svc whose stderr lines are
// collected.
func newSnapGuest(svc stateroom.Service) (*guest, *[]string) {
	var lines []string
	g := &guest{buffers: map[uintptr][]byte{}, send: func([]byte) {}, warn: func(s string) { lines = append(lines, s) }}
	g.register(stateroom.FactoryFunc(func(string) (stateroom.Service, error) { return svc, nil }))
	return g, &lines
}

// hostRestore hands b to g.restore as a host does: malloc, write, restore,
// free.
func hostRestore(g *guest, b []byte) uint32 {
	p := g.malloc(uint32(len(b)))
	var addr uintptr
	if p != nil {
		copy(unsafe.Slice(p, len(b)), b)
		addr = uintptr(unsafe.Pointer(p))
	}
	res := g.restore(addr, uint32(len(b)))
	g.free(addr, uint32(len(b)))
	return res
}

func TestSnapshotExport(t *testing.T) {
	if size := unsafe.Sizeof(guest{}.ref); size != abi.SnapshotRefSize {
		t.Fatalf("the (ptr, len) pair is %d bytes, the ABI's is %d", size, abi.SnapshotRefSize)
	}
	t.Run("snapshotter", func(t *testing.T) {
		g, _ := newSnapGuest(&durable{state: []byte("state")})
		data, ok, _ := g.snapshot()
		if !ok || string(data) != "state" {
			t.Fatalf("snapshot: %q, %v", data, ok)
		}
		ref := g.hold(data)
		if ref[1] != 5 || string(g.held) != "state" {
			t.Errorf("held %q, pair %v", g.held, ref)
		}
		deliver(g, abi.Event{Kind: abi.EventInit})
		if g.held != nil {
			t.Error("the snapshot is still held after the next call into the guest")
		}
	})
	t.Run("empty", func(t *testing.T) {
		g, _ := newSnapGuest(&durable{})
		data, ok, _ := g.snapshot()
		if !ok || len(data) != 0 || g.hold(data)[1] != 0 {
			t.Errorf("an empty snapshot: %q, %v", data, ok)
		}
	})
	t.Run("not a snapshotter", func(t *testing.T) {
		g, lines := newSnapGuest(stateroom.BaseService{})
		if _, ok, res := g.snapshot(); ok || res != abi.SnapshotNone || len(*lines) != 0 {
			t.Errorf("got ok %v, result %d, stderr %q; want SnapshotNone, silently", ok, res, *lines)
		}
	})
	t.Run("error", func(t *testing.T) {
		g, lines := newSnapGuest(&durable{snapErr: errors.New("disk full")})
		if _, ok, res := g.snapshot(); ok || res != abi.SnapshotFailed {
			t.Errorf("got ok %v, result %d; want SnapshotFailed", ok, res)
		}
		if len(*lines) != 1 || !strings.Contains((*lines)[0], "disk full") {
			t.Errorf("stderr %q does not carry the error", *lines)
		}
	})
	t.Run("panic", func(t *testing.T) {
		g, lines := newSnapGuest(&durable{panics: true})
		if _, ok, res := g.snapshot(); ok || res != abi.SnapshotFailed {
			t.Errorf("got ok %v, result %d; want SnapshotFailed", ok, res)
		}
		if len(*lines) != 1 || !strings.Contains((*lines)[0], "asked to panic") {
			t.Errorf("stderr %q does not carry the panic", *lines)
		}
	})
}

func TestRestoreExport(t *testing.T) {
	t.Run("restored", func(t *testing.T) {
		d := &durable{}
		g, _ := newSnapGuest(d)
		// The host writes the room id at instantiation, then restores.
		id := g.malloc(6)
		copy(unsafe.Slice(id, 6), "room/1")
		g.free(uintptr(unsafe.Pointer(id)), 6)
		if res := hostRestore(g, []byte("saved")); res != abi.RestoreOK {
			t.Fatalf("restore returned %d", res)
		}
		if g.roomID != "room/1" {
			t.Errorf("room id %q after the restore buffer was freed, want room/1", g.roomID)
		}
		// The service owns the buffer: a later malloc does not reuse it.
		p := g.malloc(5)
		copy(unsafe.Slice(p, 5), "xxxxx")
		if string(d.state) != "saved" {
			t.Errorf("the restored bytes changed to %q after the host freed them", d.state)
		}
		deliver(g, abi.Event{Kind: abi.EventInit})
		if len(d.inits) != 1 || !d.inits[0].Restored {
			t.Errorf("Init events %+v, want one with Restored", d.inits)
		}
	})
	t.Run("not restored", func(t *testing.T) {
		d := &durable{}
		g, _ := newSnapGuest(d)
		deliver(g, abi.Event{Kind: abi.EventInit})
		if len(d.inits) != 1 || d.inits[0].Restored {
			t.Errorf("Init events %+v, want one without Restored", d.inits)
		}
	})
	for _, c := range []struct {
		name string
		svc  stateroom.Service
		want uint32
		line string
	}{
		{"refused", &durable{restoreErr: errors.New("bad bytes")}, abi.RestoreRefused, "bad bytes"},
		{"incompatible", &durable{restoreErr: errors.Join(errors.New("old format"), stateroom.ErrIncompatibleSnapshot)}, abi.RestoreIncompatible, "old format"},
		{"panic", &durable{panics: true}, abi.RestoreRefused, "asked to panic"},
		{"not a snapshotter", stateroom.BaseService{}, abi.RestoreIncompatible, "stateroom.Snapshotter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, lines := newSnapGuest(c.svc)
			if res := hostRestore(g, []byte("saved")); res != c.want {
				t.Errorf("restore returned %d, want %d", res, c.want)
			}
			if len(*lines) != 1 || !strings.Contains((*lines)[0], c.line) {
				t.Errorf("stderr %q, want a line about %q", *lines, c.line)
			}
			if g.restored {
				t.Error("a failed restore marked the room restored")
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		d := &durable{state: []byte("old")}
		g, _ := newSnapGuest(d)
		if res := g.restore(0, 0); res != abi.RestoreOK || len(d.state) != 0 {
			t.Errorf("restore of no bytes: %d, state %q", res, d.state)
		}
	})
	t.Run("not the host's buffer", func(t *testing.T) {
		g, lines := newSnapGuest(&durable{})
		b := []byte("saved")
		if res := g.restore(uintptr(unsafe.Pointer(&b[0])), 5); res != abi.RestoreRefused || len(*lines) != 1 {
			t.Errorf("restore of untracked bytes: %d, stderr %q", res, *lines)
		}
	})
}
