package wasmpatch

import (
	"os"
	"testing"
)

// TestFreezeMergeGapSmallest measures, on the pre-initialised module at
// $STATEROOM_GAP_MODULE (a module `stateroom build` wrote), the data
// section Freeze would write for each largest gap it writes out, and fails
// unless FreezeMergeGap gives the smallest. Skipped without the variable:
// the figures in FreezeMergeGap's comment come from
//
//	stateroom build ./examples/counter
//	STATEROOM_GAP_MODULE=$PWD/examples/counter/dist/server.wasm go test -run FreezeMergeGapSmallest -v ./internal/wasmpatch/
func TestFreezeMergeGapSmallest(t *testing.T) {
	path := os.Getenv("STATEROOM_GAP_MODULE")
	if path == "" {
		t.Skip("set STATEROOM_GAP_MODULE to a module built by stateroom build to measure")
	}
	module, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, segs, err := TakeData(module)
	if err != nil {
		t.Fatal(err)
	}
	var end uint64
	for _, s := range segs {
		end = max(end, s.End())
	}
	mem := make([]byte, end)
	for _, s := range segs {
		copy(mem[s.Offset:], s.Data)
	}
	size := func(gap int) (segments, bytes int) {
		secs := []section{{id: secData, body: imageSegments(mem)}}
		_, segments = mergeData(secs, uint64(gap), 0)
		return segments, len(secs[0].body)
	}
	_, best := size(FreezeMergeGap)
	nonZero := 0
	for _, c := range mem {
		if c != 0 {
			nonZero++
		}
	}
	t.Logf("%d bytes of memory up to the last segment's end, %d of them not zero", end, nonZero)
	t.Logf("%6s %9s %13s", "gap", "segments", "data section")
	for _, gap := range []int{0, 4, 6, 7, 8, 9, 10, 12, 16, 24, 32, 64, 4096} {
		n, b := size(gap)
		t.Logf("%6d %9d %13d", gap, n, b)
		if b < best {
			t.Errorf("a gap of %d writes %d bytes of data section, FreezeMergeGap (%d) %d", gap, b, FreezeMergeGap, best)
		}
	}
}
