package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteSize is a flag value holding a size in bytes, written as a number
// with an optional unit: 67108864, 64MiB, 64M, 512KiB, 1GiB. Units are
// powers of 1024 (K, KB, KiB all mean 1024): a memory limit is counted in
// 64 KiB pages, so a decimal megabyte would never be what the user meant.
type byteSize int64

// String formats the size with the largest unit that divides it.
func (s *byteSize) String() string {
	n := int64(*s)
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set parses a size.
func (s *byteSize) Set(v string) error {
	n, err := parseByteSize(v)
	if err != nil {
		return err
	}
	*s = byteSize(n)
	return nil
}

// Type names the value in help output.
func (s *byteSize) Type() string { return "size" }

// parseByteSize parses a non-negative size with an optional binary unit.
func parseByteSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q must start with a number, e.g. 64MiB or 67108864", v)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large; the limit is 4GiB", v)
	}
	var shift uint
	switch strings.ToUpper(strings.TrimSpace(t[i:])) {
	case "", "B":
	case "K", "KB", "KIB":
		shift = 10
	case "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	default:
		return 0, fmt.Errorf("size %q has an unknown unit %q; use B, KiB, MiB or GiB", v, strings.TrimSpace(t[i:]))
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q is too large; the limit is 4GiB", v)
	}
	return n << shift, nil
}
