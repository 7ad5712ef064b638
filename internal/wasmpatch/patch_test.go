package wasmpatch_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"go.uber.org/goleak"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPatchReactor patches a small reactor and runs it: the globals point
// at 1 and 0, _initialize ran as the start function and is no longer
// exported, and the rest of the module is untouched.
func TestPatchReactor(t *testing.T) {
	in := readTestdata(t, "reactor.wasm")
	orig := bytes.Clone(in)
	out, res, err := wasmpatch.Patch(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, orig) {
		t.Error("Patch modified its input")
	}
	if res.VersionAddr != 1024+16 || res.ProtocolAddr != 1024+20 || res.StartFunc != 0 {
		t.Errorf("result %+v, want version at 1040, protocol at 1044, start function 0", res)
	}
	if res.DataSegments != 3 || res.MergedSegments != 3 {
		t.Errorf("merged %d data segments into %d, want the 3 kept: their gaps are longer than FreezeMergeGap", res.DataSegments, res.MergedSegments)
	}

	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := rt.InstantiateWithConfig(ctx, readTestdata(t, "env.wasm"), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("the patched module does not instantiate: %v", err)
	}
	for name, want := range map[string]uint32{wasmpatch.VersionExport: 1, wasmpatch.ProtocolExport: 0} {
		g := mod.ExportedGlobal(name)
		if g == nil {
			t.Fatalf("no exported global %s", name)
		}
		if v, ok := mod.Memory().ReadUint32Le(uint32(g.Get())); !ok || v != want {
			t.Errorf("%s points at %d holding %d, want %d", name, g.Get(), v, want)
		}
	}
	if got, err := mod.ExportedFunction("ready").Call(ctx); err != nil || got[0] != 1 {
		t.Errorf("ready() = %v, %v: _initialize did not run at instantiation", got, err)
	}
	if mod.ExportedFunction("_initialize") != nil {
		t.Error("_initialize is still exported")
	}
	// Merging the data segments leaves the initial memory as it was.
	origMod, err := rt.InstantiateWithConfig(ctx, in, wazero.NewModuleConfig().WithStartFunctions().WithName("orig"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := origMod.Memory().Read(0, origMod.Memory().Size())
	got, _ := mod.Memory().Read(0, mod.Memory().Size())
	if !bytes.Equal(got, want) || !bytes.Contains(got, []byte("go data")) {
		t.Error("the patched module's initial memory differs from the original's")
	}
}

// TestPatchKeepsSegmentsWhenUnsafe checks segments are not merged when
// their order matters (overlap) or they may be referred to by index
// (passive segments, a data count section).
func TestPatchKeepsSegmentsWhenUnsafe(t *testing.T) {
	for _, name := range []string{"overlap.wasm", "noglobals.wasm"} {
		_, res, err := wasmpatch.Patch(readTestdata(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if res.MergedSegments != res.DataSegments {
			t.Errorf("%s: merged %d segments into %d", name, res.DataSegments, res.MergedSegments)
		}
	}
}

// TestPatchCreatesSections patches a module with no global, export or start
// section; the result must be a valid module with the sections in order.
func TestPatchCreatesSections(t *testing.T) {
	out, res, err := wasmpatch.Patch(readTestdata(t, "noglobals.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if res.StartFunc != -1 {
		t.Errorf("StartFunc = %d for a module without _initialize", res.StartFunc)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatalf("the patched module does not instantiate: %v", err)
	}
	if g := mod.ExportedGlobal(wasmpatch.VersionExport); g == nil || g.Get() != 8+16 {
		t.Errorf("version global %v, want address 24", g)
	}
}

func TestPatchErrors(t *testing.T) {
	reactor := readTestdata(t, "reactor.wasm")
	patched, _, err := wasmpatch.Patch(reactor)
	if err != nil {
		t.Fatal(err)
	}
	header := reactor[:8]
	withSection := func(b ...byte) []byte { return append(bytes.Clone(header), b...) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
		says string
	}{
		{"empty", nil, wasmpatch.ErrNotWasm, "starts with"},
		{"text", []byte("(module)"), wasmpatch.ErrNotWasm, "28 6d 6f 64"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), wasmpatch.ErrNotWasm, "version 2"},
		{"truncated", reactor[:len(reactor)-3], wasmpatch.ErrMalformed, "section body"},
		{"unknown section", withSection(42, 0), wasmpatch.ErrMalformed, "unknown section id 42"},
		{"sections out of order", withSection(7, 1, 0, 6, 1, 0), wasmpatch.ErrMalformed, "out of order"},
		{"overlong LEB128", withSection(1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), wasmpatch.ErrMalformed, "LEB128"},
		{"bad export kind", withSection(7, 5, 1, 1, 'x', 9, 0), wasmpatch.ErrMalformed, "unknown kind 9"},
		{"trailing bytes in a section", withSection(7, 2, 0, 0), wasmpatch.ErrMalformed, "trailing"},
		{"no guest", readTestdata(t, "noguest.wasm"), wasmpatch.ErrNoGuest, "guest.Register"},
		{"already patched", patched, wasmpatch.ErrPatched, "not its patched copy"},
		{"values twice", readTestdata(t, "twice.wasm"), wasmpatch.ErrMalformed, "more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := wasmpatch.Patch(tc.in)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

// TestPatchGoModule patches a module that go build makes from a real guest
// (guest/testdata/probe): it fails if the guest's ABI values and this
// package's marker drift apart, or if the Go linker's layout changes.
func TestPatchGoModule(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "probe.wasm")
	cmd := exec.Command(goCmd, "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..", "guest", "testdata", "probe")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, msg)
	}
	module, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	patched, res, err := wasmpatch.Patch(module)
	if err != nil {
		t.Fatal(err)
	}
	if res.StartFunc < 0 {
		t.Error("no _initialize found in a c-shared module")
	}
	// The interpreter validates without compiling machine code: quick
	// even for a 3 MB module under -race.
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	send := func(context.Context, api.Module, []uint64) {}
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(send), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, nil).
		Export("stateroom_send").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, patched, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("the patched Go module does not instantiate: %v", err)
	}
	if v, ok := mod.Memory().ReadUint32Le(res.VersionAddr); !ok || v != 1 {
		t.Errorf("version address %#x holds %d, want 1", res.VersionAddr, v)
	}
	// The start function initialized the Go runtime: exports work.
	if got, err := mod.ExportedFunction("stateroom_api_version").Call(ctx); err != nil || got[0] != 1 {
		t.Errorf("stateroom_api_version() = %v, %v", got, err)
	}
}
