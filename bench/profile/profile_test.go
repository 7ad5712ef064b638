package profile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartCPU(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err := StartCPU(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A stopped profile is a gzipped protobuf: never empty, starts with
	// the gzip magic.
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile file: %d bytes %.2x, %v; want a gzipped profile", len(b), b[:min(len(b), 2)], err)
	}

	stop, err = StartCPU("")
	if err != nil || stop() != nil {
		t.Errorf("StartCPU(\"\") = %v; want a no-op", err)
	}
	if _, err := StartCPU(filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof")); err == nil {
		t.Error("StartCPU into a missing directory succeeded; want an error naming --cpuprofile")
	}
}
