package wasmpatch_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// TestTakeData takes the segments out of modules and checks what a host
// relies on: the segments in order, a module that still compiles and
// instantiates, and that instantiating it writes none of their bytes.
func TestTakeData(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []wasmpatch.Segment
	}{
		{"overlap.wasm", []wasmpatch.Segment{
			{Offset: 0, Data: []byte("\xffstateroom-abi\xff\x01\x01\x00\x00\x00\x00\x00\x00\x00\xfeend")},
			{Offset: 40, Data: []byte("aaaa")},
			{Offset: 42, Data: []byte("bb")},
		}},
		// A data count section: the segments stay, emptied.
		{"datadrop.wasm", []wasmpatch.Segment{{Offset: 16, Data: []byte("hello")}, {Offset: 65540, Data: []byte("world")}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := readTestdata(t, tc.file)
			orig := bytes.Clone(in)
			rest, segs, err := wasmpatch.TakeData(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, orig) {
				t.Error("TakeData modified its input")
			}
			if len(segs) != len(tc.want) {
				t.Fatalf("got %d segments, want %d", len(segs), len(tc.want))
			}
			for i, s := range segs {
				if s.Offset != tc.want[i].Offset || !bytes.Equal(s.Data, tc.want[i].Data) {
					t.Errorf("segment %d: %d %q, want %d %q", i, s.Offset, s.Data, tc.want[i].Offset, tc.want[i].Data)
				}
			}
			if got, want := segs[len(segs)-1].End(), uint64(tc.want[len(segs)-1].Offset)+uint64(len(tc.want[len(segs)-1].Data)); got != want {
				t.Errorf("End() = %d, want %d", got, want)
			}
			for _, s := range segs {
				if bytes.Contains(rest, s.Data) {
					t.Errorf("the module still holds the bytes %q", s.Data)
				}
			}

			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			mod, err := rt.Instantiate(ctx, rest)
			if err != nil {
				t.Fatalf("the module without its data does not instantiate: %v", err)
			}
			mem := mod.Memory()
			for _, s := range segs {
				got, _ := mem.Read(s.Offset, uint32(len(s.Data)))
				if !bytes.Equal(got, make([]byte, len(s.Data))) {
					t.Errorf("instantiation wrote %q at %d, want zeros", got, s.Offset)
				}
			}
		})
	}
}

// TestTakeDataRefuses checks that modules whose data depends on the
// instance, or is copied later, are refused, and that a module without
// data comes back as it is.
func TestTakeDataRefuses(t *testing.T) {
	for _, file := range []string{"passive.wasm", "globaloffset.wasm"} {
		rest, segs, err := wasmpatch.TakeData(readTestdata(t, file))
		if !errors.Is(err, wasmpatch.ErrDataNotConstant) || rest != nil || segs != nil {
			t.Errorf("%s: %d bytes, %d segments, %v; want ErrDataNotConstant", file, len(rest), len(segs), err)
		}
	}
	empty := []byte("\x00asm\x01\x00\x00\x00")
	if rest, segs, err := wasmpatch.TakeData(empty); err != nil || !bytes.Equal(rest, empty) || segs != nil {
		t.Errorf("empty module: %q, %v, %v", rest, segs, err)
	}
	if _, _, err := wasmpatch.TakeData([]byte("\x7fELF")); !errors.Is(err, wasmpatch.ErrNotWasm) {
		t.Errorf("not wasm: %v, want ErrNotWasm", err)
	}
}
