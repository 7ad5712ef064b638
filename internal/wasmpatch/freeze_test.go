package wasmpatch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// TestFreezeRoundTrip runs the start function of the patched reactor
// through ExportState, freezes a snapshot, and checks that the frozen
// module instantiates to exactly that state without running anything.
func TestFreezeRoundTrip(t *testing.T) {
	patched, _, err := Patch(readFile(t, "reactor.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	probe, globals, err := ExportState(patched)
	if err != nil {
		t.Fatal(err)
	}
	if len(globals) != 2 || globals[0].Index != 1 || globals[0].Type != typeI32 || globals[1].Type != typeI64 {
		t.Fatalf("mutable globals %+v, want $ready (1, i32) and $other (2, i64)", globals)
	}

	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := rt.InstantiateWithConfig(ctx, readFile(t, "env.wasm"), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, probe, wazero.NewModuleConfig().WithName("probe"))
	if err != nil {
		t.Fatal(err)
	}
	if got := mod.ExportedGlobal(globals[0].Export).Get(); got != 0 {
		t.Fatalf("the start function ran at instantiation ($ready = %d)", got)
	}
	if _, err := mod.ExportedFunction(StartExport).Call(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := mod.Memory().Grow(1); !ok { // as a heap grows
		t.Fatal("grow")
	}
	mod.Memory().Write(PageSize-2, []byte{9, 9, 9, 9}) // across the page boundary
	mod.Memory().Write(2*PageSize-1, []byte{1})
	mem, _ := mod.Memory().Read(0, mod.Memory().Size())
	mem = bytes.Clone(mem)
	snap := Snapshot{Memory: mem, Globals: []uint64{mod.ExportedGlobal(globals[0].Export).Get(), 1<<64 - 5}}
	frozen, res, err := Freeze(patched, snap)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 2 || res.Globals != 2 || res.Segments == 0 {
		t.Errorf("result %+v, want 2 pages and 2 globals", res)
	}

	got, err := rt.InstantiateWithConfig(ctx, frozen, wazero.NewModuleConfig().WithName("frozen"))
	if err != nil {
		t.Fatalf("the frozen module does not instantiate: %v", err)
	}
	if r, err := got.ExportedFunction("ready").Call(ctx); err != nil || r[0] != 1 {
		t.Errorf("ready() = %v, %v: the frozen $ready is not 1", r, err)
	}
	if gm, _ := got.Memory().Read(0, got.Memory().Size()); !bytes.Equal(gm, mem) {
		t.Error("the frozen module's memory differs from the snapshot")
	}
	for _, name := range []string{VersionExport, ProtocolExport} {
		if got.ExportedGlobal(name) == nil {
			t.Errorf("%s is no longer exported", name)
		}
	}
	// $other's initializer now holds the snapshot's value.
	for _, s := range mustSections(t, frozen) {
		if s.id == secGlobal && !bytes.Contains(s.body, []byte{typeI64, 1, 0x42, 0x7b, 0x0b}) {
			t.Errorf("global section % x has no i64.const -5 for $other", s.body)
		}
	}
	if _, _, err := ExportState(frozen); !errors.Is(err, ErrUnsupported) {
		t.Errorf("the frozen module still has a start function: %v", err)
	}
}

// TestFreezeRefuses: modules whose snapshot would not be the whole story.
func TestFreezeRefuses(t *testing.T) {
	patched, _, err := Patch(readFile(t, "reactor.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, PageSize)
	for _, tc := range []struct {
		name   string
		module []byte
		snap   Snapshot
	}{
		{"no start function", readFile(t, "reactor.wasm"), Snapshot{Memory: page, Globals: []uint64{0, 0}}},
		{"passive data", readFile(t, "passive.wasm"), Snapshot{Memory: page}},
		{"data count", readFile(t, "datadrop.wasm"), Snapshot{Memory: page}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Freeze(tc.module, tc.snap); !errors.Is(err, ErrUnsupported) {
				t.Errorf("got %v, want ErrUnsupported", err)
			}
		})
	}
	if _, _, err := Freeze(patched, Snapshot{Memory: page[:100], Globals: []uint64{0, 0}}); err == nil {
		t.Error("a snapshot of part of a page was accepted")
	}
	if _, _, err := Freeze(patched, Snapshot{Memory: page, Globals: []uint64{0}}); err == nil {
		t.Error("a snapshot with too few globals was accepted")
	}
}

// FuzzFreeze feeds ExportState and Freeze mutations of the modules in
// testdata/ and their patched copies. Neither may panic; when Freeze
// succeeds, its output parses, has no start function left, and its data
// segments write exactly the snapshot's non-zero bytes.
//
// Run: go test -fuzz=FuzzFreeze ./internal/wasmpatch
func FuzzFreeze(f *testing.F) {
	for _, b := range testModules(f) {
		f.Add(b)
		if p, _, err := Patch(b); err == nil {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, globals, err := ExportState(in)
		if err != nil {
			return
		}
		mem := make([]byte, PageSize)
		copy(mem[10:], "snapshot")
		copy(mem[PageSize-3:], "end")
		snap := Snapshot{Memory: mem, Globals: make([]uint64, len(globals))}
		out, _, err := Freeze(in, snap)
		if err != nil {
			return
		}
		if _, _, err := ExportState(out); !errors.Is(err, ErrUnsupported) {
			t.Errorf("the output still has a start function: %v", err)
		}
		want := map[uint32]byte{}
		for i, c := range mem {
			if c != 0 {
				want[uint32(i)] = c
			}
		}
		if got := memoryImage(t, out); !equalImages(got, want) {
			t.Error("the output's data segments do not write the snapshot")
		}
	})
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSections(t testing.TB, module []byte) []section {
	t.Helper()
	secs, err := parseSections(module)
	if err != nil {
		t.Fatal(err)
	}
	return secs
}

// TestFreezeCapsSegments: a memory with more runs of data than runtimes
// accept segments (one non-zero byte in every 10: 104,858 runs 9 zero
// bytes apart, more than FreezeMergeGap) is written in at most
// MaxSegments segments, and still makes the same memory.
func TestFreezeCapsSegments(t *testing.T) {
	patched, _, err := Patch(readFile(t, "reactor.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, 16*PageSize)
	for i := 0; i < len(mem); i += 10 {
		mem[i] = 1
	}
	frozen, res, err := Freeze(patched, Snapshot{Memory: mem, Globals: []uint64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments == 0 || res.Segments > MaxSegments {
		t.Errorf("%d data segments written, want 1 to %d", res.Segments, MaxSegments)
	}
	want := map[uint32]byte{}
	for i, c := range mem {
		if c != 0 {
			want[uint32(i)] = c
		}
	}
	if !equalImages(memoryImage(t, frozen), want) {
		t.Error("the frozen module's data segments do not make the snapshot's memory")
	}
}
