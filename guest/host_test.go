//go:build !wasip1

package guest_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom/internal/abi"
	"github.com/stateroom-go/stateroom/internal/gobuild"
)

// tmpDir holds the probe module built once per test binary.
var tmpDir string

func TestMain(m *testing.M) {
	var err error
	if tmpDir, err = os.MkdirTemp("", "guest-test-"); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if probeRT != nil {
			probeRT.Close(context.Background())
		}
		os.RemoveAll(tmpDir)
		os.Exit(code)
	}))
}

var (
	probeOnce     sync.Once
	probeRT       wazero.Runtime
	probeCompiled wazero.CompiledModule
	probeBytes    []byte
	probeErr      error
)

// probeModule builds guest/testdata/probe with internal/gobuild and
// compiles it, once per test binary: building a Go module takes seconds.
func probeModule(t testing.TB) (wazero.Runtime, wazero.CompiledModule) {
	t.Helper()
	probeOnce.Do(func() {
		ctx := context.Background()
		out := filepath.Join(tmpDir, "probe.wasm")
		if probeErr = gobuild.Build(ctx, gobuild.Options{Dir: "testdata/probe", Output: out}); probeErr != nil {
			return
		}
		if probeBytes, probeErr = os.ReadFile(out); probeErr != nil {
			return
		}
		probeRT = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(testCache()))
		if _, probeErr = wasi_snapshot_preview1.Instantiate(ctx, probeRT); probeErr != nil {
			return
		}
		if _, probeErr = probeRT.NewHostModuleBuilder("env").
			NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostSend), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, nil).
			Export("stateroom_send").Instantiate(ctx); probeErr != nil {
			return
		}
		probeCompiled, probeErr = probeRT.CompileModule(ctx, probeBytes)
	})
	if probeErr != nil {
		t.Fatalf("building the probe module: %v", probeErr)
	}
	return probeRT, probeCompiled
}

// testCache is wazero's compilation cache in the user's cache directory
// (where package wasmhost keeps its own by default): compiling a Go module
// takes seconds, over ten under -race, and the cache keys by module hash and
// wazero version, so a stale entry is never used.
func testCache() wazero.CompilationCache {
	dir, err := os.UserCacheDir()
	if err != nil {
		return wazero.NewCompilationCache()
	}
	c, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "stateroom", "wazero"))
	if err != nil {
		return wazero.NewCompilationCache()
	}
	return c
}

// instanceKey finds the test instance a stateroom_send call comes from.
type instanceKey struct{}

// hostSend is env.stateroom_send: it decodes the command strictly and
// records it on the instance the call came from.
func hostSend(ctx context.Context, mod api.Module, stack []uint64) {
	inst := ctx.Value(instanceKey{}).(*instance)
	ptr, size := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	b, ok := mod.Memory().Read(ptr, size)
	if !ok {
		inst.errs = append(inst.errs, "stateroom_send out of bounds")
		return
	}
	c, err := abi.DecodeCommand(b)
	if err != nil {
		inst.errs = append(inst.errs, err.Error())
		return
	}
	c.Payload.Data = append([]byte(nil), c.Payload.Data...) // the guest reuses its buffer
	inst.sent = append(inst.sent, c)
}

// instance is one module instance driven the way a host drives a room.
type instance struct {
	t                  testing.TB
	ctx                context.Context
	mod                api.Module
	malloc, free, recv api.Function
	sent               []abi.Command
	errs               []string
	buf                []byte
	stderr             io.Writer // the guest's stderr is copied here when set
}

// newInstance instantiates the probe and closes it when the test ends.
func newInstance(t testing.TB, roomID *string) *instance {
	t.Helper()
	inst := instantiate(t, roomID)
	t.Cleanup(func() { inst.mod.Close(context.Background()) })
	return inst
}

// instantiate instantiates the probe and, if roomID is not nil, writes the
// room id the way upstream's host does once at start: malloc, write, free.
// The patched module initializes the Go runtime in its start function, so
// no _initialize call is needed (or exported).
func instantiate(t testing.TB, roomID *string) *instance {
	t.Helper()
	rt, compiled := probeModule(t)
	inst := &instance{t: t}
	inst.ctx = context.WithValue(context.Background(), instanceKey{}, inst)
	cfg := wazero.NewModuleConfig().WithName("").
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader).
		WithStderr(stderrWriter{inst}).WithStdout(testWriter{t})
	mod, err := rt.InstantiateModule(inst.ctx, compiled, cfg)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	inst.mod = mod
	inst.malloc = mod.ExportedFunction("stateroom_malloc")
	inst.free = mod.ExportedFunction("stateroom_free")
	inst.recv = mod.ExportedFunction("stateroom_recv")
	if roomID != nil {
		p := inst.put([]byte(*roomID))
		inst.call(inst.free, p, uint64(len(*roomID)))
	}
	return inst
}

func (inst *instance) call(f api.Function, args ...uint64) []uint64 {
	inst.t.Helper()
	res, err := f.Call(inst.ctx, args...)
	if err != nil {
		inst.t.Fatalf("%s%v: %v", f.Definition().ExportNames()[0], args, err)
	}
	return res
}

// put mallocs len(b) bytes in the guest and writes b there.
func (inst *instance) put(b []byte) uint64 {
	inst.t.Helper()
	p := inst.call(inst.malloc, uint64(len(b)))[0]
	if len(b) > 0 && !inst.mod.Memory().Write(uint32(p), b) {
		inst.t.Fatalf("malloc(%d) returned %#x, outside memory", len(b), p)
	}
	return p
}

// deliver runs one event the ABI's way (malloc, write, recv, free) and
// returns the commands the guest sent meanwhile.
func (inst *instance) deliver(ev abi.Event) []abi.Command {
	inst.t.Helper()
	inst.sent = inst.sent[:0]
	inst.buf = abi.AppendEvent(inst.buf[:0], ev)
	p := inst.put(inst.buf)
	inst.call(inst.recv, p, uint64(len(inst.buf)))
	inst.call(inst.free, p, uint64(len(inst.buf)))
	if len(inst.errs) > 0 {
		inst.t.Fatalf("bad sends: %v", inst.errs)
	}
	return inst.sent
}

// stderrWriter logs the guest's stderr and copies it to inst.stderr.
type stderrWriter struct{ inst *instance }

func (w stderrWriter) Write(p []byte) (int, error) {
	if w.inst.stderr != nil {
		w.inst.stderr.Write(p)
	}
	return testWriter{w.inst.t}.Write(p)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("guest: %s", p)
	return len(p), nil
}
