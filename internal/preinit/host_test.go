package preinit_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// A minimal host for the tests: it instantiates a module as any host
// would (no _initialize call, real clocks and entropy), delivers events
// the ABI's way and collects what the guest sends. The rooms of the real
// server (wasmhost) are exercised by examples/randomness's tests.

// host is one wazero runtime with the imports a guest needs.
type host struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
}

type sendsKey struct{}

func newHost(t testing.TB, module []byte) *host {
	t.Helper()
	ctx := context.Background()
	// The interpreter: the compiler takes over a minute per Go module
	// under the race detector.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(ctx context.Context, m api.Module, ptr, size uint32) {
			b, ok := m.Memory().Read(ptr, size)
			if !ok {
				panic("stateroom_send out of bounds")
			}
			c, err := abi.DecodeCommand(b)
			if err != nil {
				panic(err)
			}
			s := ctx.Value(sendsKey{}).(*[]abi.Command)
			*s = append(*s, c)
		}).Export("stateroom_send").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := rt.CompileModule(ctx, module)
	if err != nil {
		t.Fatalf("the module does not compile: %v", err)
	}
	return &host{rt: rt, compiled: compiled}
}

// room is one instance.
type room struct {
	t      testing.TB
	ctx    context.Context
	mod    api.Module
	sent   []abi.Command
	stderr lockedBuffer
}

// newRoom instantiates the module with the environment variable
// PREINIT_PROBE=runtime, which a pre-initialised module does not see.
func (h *host) newRoom(t testing.TB) *room {
	t.Helper()
	r := &room{t: t}
	r.ctx = context.WithValue(context.Background(), sendsKey{}, &r.sent)
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader).
		WithEnv("PREINIT_PROBE", "runtime").WithStderr(&r.stderr)
	mod, err := h.rt.InstantiateModule(r.ctx, h.compiled, cfg)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	r.mod = mod
	r.deliver(abi.Event{Kind: abi.EventInit})
	return r
}

func (r *room) call(name string, args ...uint64) []uint64 {
	r.t.Helper()
	res, err := r.mod.ExportedFunction(name).Call(r.ctx, args...)
	if err != nil {
		r.t.Fatalf("%s%v: %v\nstderr: %s", name, args, err, r.stderr.String())
	}
	return res
}

// deliver runs one event (malloc, write, recv, free) and returns what the
// guest sent meanwhile.
func (r *room) deliver(ev abi.Event) []abi.Command {
	r.t.Helper()
	r.sent = r.sent[:0]
	b := abi.AppendEvent(nil, ev)
	p := r.call("stateroom_malloc", uint64(len(b)))[0]
	if !r.mod.Memory().Write(uint32(p), b) {
		r.t.Fatalf("malloc returned %#x, outside memory", p)
	}
	r.call("stateroom_recv", p, uint64(len(b)))
	r.call("stateroom_free", p, uint64(len(b)))
	return r.sent
}

// ask sends text from client 1 and returns the text the guest answers.
func (r *room) ask(text string) string {
	r.t.Helper()
	sent := r.deliver(abi.Event{Kind: abi.EventMessage, Client: 1, Payload: stateroom.Text(text)})
	if len(sent) != 1 || sent[0].Kind != abi.CommandMessage {
		r.t.Fatalf("%q: the guest sent %v, want one message", text, sent)
	}
	return sent[0].Payload.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
