package wasmhost

import (
	"log/slog"
	"strings"
	"testing"
)

// TestHeapMemoryMergesDataOnce: with wazero's own memory (which copies the
// data segments into every instance), Load merges a module's segments once
// across gaps of up to wasmpatch.MaxMergeGap, so that instantiation does not
// pay per segment; a module `stateroom build` wrote keeps tens of thousands.
// testdata/bigdata.wasm has 25 segments: one at 16, then one per 4 KiB page
// from 34,816, which merge into 2. TestMappedMemoryMatchesHeap checks that
// the memory an instance starts with is the same either way.
func TestHeapMemoryMergesDataOnce(t *testing.T) {
	var log logBuffer
	opts := testOptions()
	opts.HeapMemory = true
	opts.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := loadGuest(t, "bigdata", opts)
	if got := log.String(); !strings.Contains(got, "data segments merged") || !strings.Contains(got, "segments=25 merged=2") {
		t.Errorf("Load with HeapMemory logged\n%s\nwant its 25 data segments merged into 2", got)
	}
	newService(t, m) // the merged module instantiates
}
