package guest

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// abiValues holds the two i32s the STATEROOM_API_VERSION and
// STATEROOM_API_PROTOCOL globals point at. Go cannot export globals, so
// internal/wasmpatch finds these bytes in the linked module's data by the
// surrounding markers and adds globals holding their addresses. Keep the
// literal in step with internal/wasmpatch's marker (a test there builds a
// module from this package and checks it is found). The trailing marker keeps
// the seven zero bytes inside one data segment: the Go linker omits runs of
// eight or more zeros from its data segments.
var abiValues = struct {
	head     [16]byte
	version  int32
	protocol int32
	tail     [4]byte
}{
	head:     [16]byte{'\xff', 's', 't', 'a', 't', 'e', 'r', 'o', 'o', 'm', '-', 'a', 'b', 'i', '\xff', '\x01'},
	version:  abi.Version,
	protocol: abi.Protocol,
	tail:     [4]byte{'\xfe', 'e', 'n', 'd'},
}

// guest is the state of the one room a module instance runs. A wasm
// instance is single-threaded and the host calls it one event at a time, so
// nothing here is locked.
type guest struct {
	factory stateroom.Factory
	service stateroom.Service
	roomID  string
	started bool // an event has been delivered; the room id is settled

	// buffers keeps every buffer the host allocated and has not freed,
	// keyed by its address, so the garbage collector leaves it alone.
	buffers map[uintptr][]byte
	// spare is the last freed event buffer, reused by the next malloc it
	// fits: most events are small and alike, so steady traffic allocates
	// nothing.
	spare []byte

	out  []byte       // reused encoding buffer for commands
	send func([]byte) // hands one encoded command to the host

	// held is the last snapshot handed to the host and ref its (ptr,
	// len) pair, kept at least until the host's next call into the guest
	// (the ABI's promise); held is dropped at the next event, snapshot or
	// restore, so a snapshot does not pin its memory for the life of the
	// room.
	held []byte
	ref  [2]uint32
	// restored: the service took a snapshot through stateroom_restore,
	// so its Init says so (the ABI's Init event has no room for it).
	restored bool
	// members are the clients the host named through stateroom_member
	// since the last Init: the room's clients when this instance started,
	// for the service's InitEvent.Clients.
	members []stateroom.ClientID
	// warn writes a line to stderr, which the host logs with the room id
	// and puts in the error of a failed snapshot or restore; tests
	// replace it.
	warn func(string)
}

// spareMax bounds the buffer kept for reuse, so one large message does not
// pin its memory for the life of the room.
const spareMax = 64 << 10

// current is the module's one room. Register fills in the factory; the
// wasip1 exports use it.
var current = guest{buffers: make(map[uintptr][]byte)}

// Register makes f the factory of the module's service. Call it once, from
// an init function of package main (see the package documentation for why
// init). It panics if f is nil or if a factory is already registered, as
// http.Handle does for a duplicate pattern: both are mistakes in the
// program, found the first time it runs.
//
// Outside a wasip1 build Register only records f; nothing calls it.
func Register(f stateroom.Factory) {
	current.register(f)
}

func (g *guest) register(f stateroom.Factory) {
	if f == nil {
		panic("guest: Register called with a nil factory; pass one, e.g. stateroom.New(NewMyService)")
	}
	if g.factory != nil {
		panic("guest: Register called twice; a module runs exactly one service, register it once")
	}
	g.factory = f
	preinitValues.registered = 1
}

// malloc returns the first byte of a new buffer of size bytes, kept alive
// until free; nil for size 0.
func (g *guest) malloc(size uint32) *byte {
	if size == 0 {
		return nil
	}
	var buf []byte
	if uint32(cap(g.spare)) >= size {
		buf, g.spare = g.spare[:size], nil
	} else {
		buf = make([]byte, size)
	}
	g.buffers[uintptr(unsafe.Pointer(&buf[0]))] = buf
	return &buf[0]
}

// free releases a buffer from malloc. Before the first event, the buffer's
// bytes are the room id (see the package documentation). Unknown addresses
// and size 0 are ignored: the host owns those mistakes and nothing here
// depends on them.
func (g *guest) free(p uintptr, size uint32) {
	buf, ok := g.buffers[p]
	if !ok || size == 0 {
		return
	}
	delete(g.buffers, p)
	if !g.started && size <= uint32(len(buf)) && utf8.Valid(buf[:size]) {
		g.roomID = string(buf[:size])
	}
	if cap(buf) <= spareMax && cap(buf) > cap(g.spare) {
		g.spare = buf
	}
}

// recv delivers one encoded event to the service.
func (g *guest) recv(b []byte) {
	ev, err := abi.DecodeEvent(b)
	if err != nil {
		panic(&stateroom.Fault{Reason: "guest: bad event from host", Err: err})
	}
	g.held = nil
	g.started = true
	g.ensureService()
	r := room{g}
	switch ev.Kind {
	case abi.EventInit:
		clients := g.members
		g.members = nil // the service may keep the slice
		g.service.Init(r, stateroom.InitEvent{Restored: g.restored, Clients: clients})
	case abi.EventConnect:
		g.service.Connect(r, stateroom.ConnectEvent{Client: ev.Client})
	case abi.EventDisconnect:
		g.service.Disconnect(r, stateroom.DisconnectEvent{Client: ev.Client})
	case abi.EventMessage:
		g.service.Message(r, stateroom.MessageEvent{Client: ev.Client, Payload: ev.Payload})
	case abi.EventTimer:
		g.service.Timer(r, stateroom.TimerEvent{})
	}
}

// ensureService builds the service at the first call that needs it: the
// first event, or a restore before it.
func (g *guest) ensureService() stateroom.Service {
	if g.service == nil {
		g.service = g.newService()
	}
	return g.service
}

// snapshot runs the service's Snapshot for stateroom_snapshot. ok is false
// when there are no bytes to hand over; result is then the export's
// answer: abi.SnapshotNone for a service that is not a
// stateroom.Snapshotter (the host falls back to raw memory), and
// abi.SnapshotFailed for a Snapshot that returned an error or panicked (the
// host skips this save, as the runtime does for a native service).
func (g *guest) snapshot() (data []byte, ok bool, result uint32) {
	g.held = nil
	sn, isSnap := g.ensureService().(stateroom.Snapshotter)
	if !isSnap {
		return nil, false, abi.SnapshotNone
	}
	defer func() {
		if v := recover(); v != nil {
			g.report("guest: the service's Snapshot panicked: " + panicText(v))
			data, ok, result = nil, false, abi.SnapshotFailed
		}
	}()
	data, err := sn.Snapshot()
	if err != nil {
		g.report("guest: the service's Snapshot failed: " + err.Error())
		return nil, false, abi.SnapshotFailed
	}
	return data, true, 0
}

// hold keeps data for the host until its next call into the guest and
// returns the (ptr, len) pair stateroom_snapshot points at.
func (g *guest) hold(data []byte) *[2]uint32 {
	g.held = data
	g.ref = [2]uint32{0, uint32(len(data))}
	if len(data) > 0 {
		g.ref[0] = uint32(uintptr(unsafe.Pointer(&data[0])))
	}
	return &g.ref
}

// restore runs the service's Restore for stateroom_restore, on the size
// bytes at p that the host allocated with stateroom_malloc and wrote. The
// service gets that buffer itself, not a copy: the guest stops tracking
// it, so the host's stateroom_free after the call is ignored and the
// service may keep the slice, as a native service may keep what Restore
// got. It returns the export's answer: abi.RestoreOK,
// abi.RestoreIncompatible when Restore's error wraps
// stateroom.ErrIncompatibleSnapshot (or the service cannot restore at
// all), else abi.RestoreRefused. A panic in Restore is a refusal, as it is
// natively.
func (g *guest) restore(p uintptr, size uint32) uint32 {
	g.held = nil
	var data []byte
	if size > 0 {
		buf, tracked := g.buffers[p]
		if !tracked || uint32(len(buf)) < size {
			g.report("guest: stateroom_restore was handed bytes the host did not allocate with stateroom_malloc")
			return abi.RestoreRefused
		}
		delete(g.buffers, p)
		data = buf[:size:size]
	}
	// The host writes the room id at instantiation, before a restore: it
	// is settled, and later frees are not the room id.
	g.started = true
	sn, ok := g.ensureService().(stateroom.Snapshotter)
	if !ok {
		g.report("guest: the room has a saved state, and the service does not implement stateroom.Snapshotter to restore it")
		return abi.RestoreIncompatible
	}
	if err := restoreService(sn, data); err != nil {
		g.report("guest: the service's Restore failed: " + err.Error())
		if errors.Is(err, stateroom.ErrIncompatibleSnapshot) {
			return abi.RestoreIncompatible
		}
		return abi.RestoreRefused
	}
	g.restored = true
	return abi.RestoreOK
}

// member records a client the host named through stateroom_member, for
// the next Init. The room id is settled by then, as for a restore.
func (g *guest) member(id stateroom.ClientID) {
	g.held = nil
	g.started = true
	g.members = append(g.members, id)
}

// restoreService calls sn.Restore, turning a panic into an error.
func restoreService(sn stateroom.Snapshotter, data []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.New("Restore panicked: " + panicText(v))
		}
	}()
	return sn.Restore(data)
}

// report writes one line for the host's log.
func (g *guest) report(line string) {
	if g.warn != nil {
		g.warn(line)
		return
	}
	println(line) // the runtime's print goes to stderr; fmt would add a fifth to the module
}

// panicText describes a recovered panic value without fmt.
func panicText(v any) string {
	switch v := v.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	}
	return "a value of a type the guest cannot print"
}

func (g *guest) newService() stateroom.Service {
	if g.factory == nil {
		panic("guest: no service registered: call guest.Register(factory) from an init function in package main")
	}
	svc, err := g.factory.NewService(g.roomID)
	if err != nil {
		panic(&stateroom.Fault{Reason: "room refused", Err: &factoryError{g.roomID, err}})
	}
	if svc == nil {
		panic("guest: the factory for room " + strconv.Quote(g.roomID) + " returned a nil service and no error")
	}
	return svc
}

// factoryError is the factory's error with the room it refused. The guest
// avoids fmt: it is a large part of a module's size.
type factoryError struct {
	roomID string
	err    error
}

func (e *factoryError) Error() string {
	return "guest: factory for room " + strconv.Quote(e.roomID) + ": " + e.err.Error()
}

func (e *factoryError) Unwrap() error { return e.err }

// command encodes c and hands it to the host, which copies it before
// returning, so the buffer is reused.
func (g *guest) command(c abi.Command) {
	g.out = abi.AppendCommand(g.out[:0], c)
	g.send(g.out)
	if cap(g.out) > spareMax {
		g.out = nil // do not pin one large message's buffer
	}
}

// room is the [stateroom.Room] a guest's service sees.
type room struct{ g *guest }

func (r room) ID() string { return r.g.roomID }

func (r room) Send(to stateroom.Recipient, p stateroom.Payload) {
	r.g.command(abi.Command{Kind: abi.CommandMessage, To: to, Payload: p})
}

// Close sends the ABI's Close command, our extension (see ABI.md): only a
// service that closes clients needs a host that knows it. A code a service
// may not use is refused here, before anything is sent, with the error
// Room.Close returns natively; the reason is cut as the runtime would cut it,
// so no more than a close frame holds crosses into the host.
func (r room) Close(id stateroom.ClientID, code stateroom.CloseCode, reason string) error {
	if err := stateroom.CheckServiceClose(code); err != nil {
		return err
	}
	r.g.command(abi.Command{Kind: abi.CommandClose, Client: id, Code: code, Reason: stateroom.TruncateReason(reason)})
	return nil
}

func (r room) SetTimer(d time.Duration) {
	r.g.command(abi.Command{Kind: abi.CommandSetTimer, DelayMS: delayMS(d)})
}

// delayMS converts a timer delay to the ABI's u32 milliseconds: zero or less
// is 0 (fire at once), a partial millisecond rounds up so a timer never fires
// early, and anything past 2^32-1 ms (49 days) is capped.
func delayMS(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	ms := d / time.Millisecond
	if d%time.Millisecond != 0 {
		ms++
	}
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(ms)
}
