package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// The bbolt store keeps each record as one value:
//
//	[0]      format version, recordVersion
//	[1:9]    revision, big-endian uint64, never 0
//	[9:17]   saved, Unix nanoseconds, big-endian int64
//	[17:21]  CRC-32C of bytes [0:17] followed by the data
//	[21:]    data
//
// bbolt checksums its meta pages but not values, so the CRC is what tells a
// damaged record from a valid one.
//
// A set-aside record is one value:
//
//	[0]      format version, asideVersion
//	[1:9]    set aside at, Unix nanoseconds, big-endian int64
//	[9:13]   room length R, big-endian uint32
//	[13:13+R] room
//	[..+4]   reason length N, big-endian uint32
//	[..+N]   reason
//	[..+4]   CRC-32C of everything before it
//	[..]     the record's value as it was stored (possibly damaged)
const (
	recordVersion   = 1
	recordHeaderLen = 21
	asideVersion    = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordHeader is the part of a record value that Save, SetAside and List
// read without verifying the data.
type recordHeader struct {
	revision uint64
	saved    time.Time
}

// appendRecord appends the value of a record to dst.
func appendRecord(dst []byte, revision uint64, saved time.Time, data []byte) []byte {
	start := len(dst)
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint64(dst, revision)
	dst = binary.BigEndian.AppendUint64(dst, uint64(saved.UnixNano()))
	sum := crc32.Update(crc32.Checksum(dst[start:], castagnoli), castagnoli, data)
	dst = binary.BigEndian.AppendUint32(dst, sum)
	return append(dst, data...)
}

// decodeHeader reads the header of a record value without verifying it.
func decodeHeader(v []byte) (recordHeader, error) {
	if len(v) < recordHeaderLen {
		return recordHeader{}, fmt.Errorf("truncated: %d bytes, shorter than a record header (%d)", len(v), recordHeaderLen)
	}
	if v[0] != recordVersion {
		return recordHeader{}, fmt.Errorf("unknown record format %d (this version of stateroom reads format %d; was the file written by a newer one?)", v[0], recordVersion)
	}
	h := recordHeader{
		revision: binary.BigEndian.Uint64(v[1:9]),
		saved:    time.Unix(0, int64(binary.BigEndian.Uint64(v[9:17]))).UTC(),
	}
	if h.revision == 0 {
		return recordHeader{}, errors.New("revision 0 in the header")
	}
	return h, nil
}

// decodeRecord verifies a record value and returns its header and data. The
// data aliases v.
func decodeRecord(v []byte) (recordHeader, []byte, error) {
	h, err := decodeHeader(v)
	if err != nil {
		return recordHeader{}, nil, err
	}
	want := binary.BigEndian.Uint32(v[17:21])
	got := crc32.Update(crc32.Checksum(v[:17], castagnoli), castagnoli, v[recordHeaderLen:])
	if got != want {
		return recordHeader{}, nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x over %d bytes of data)", want, got, len(v)-recordHeaderLen)
	}
	return h, v[recordHeaderLen:], nil
}

// infoOf describes a record value without verifying its data.
func infoOf(room string, v []byte) Info {
	h, err := decodeHeader(v)
	if err != nil {
		return Info{Room: room, Size: len(v)}
	}
	return Info{Room: room, Revision: h.revision, Size: len(v) - recordHeaderLen, Saved: h.saved}
}

// asideMeta is what a set-aside value says besides the record.
type asideMeta struct {
	room   string
	reason string
	at     time.Time
}

// appendAside appends the value of a set-aside record to dst; raw is the
// record's value as it was stored.
func appendAside(dst []byte, m asideMeta, raw []byte) []byte {
	start := len(dst)
	dst = append(dst, asideVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.at.UnixNano()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.room)))
	dst = append(dst, m.room...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.reason)))
	dst = append(dst, m.reason...)
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return append(dst, raw...)
}

// decodeAside verifies a set-aside value and returns what it says and the
// record's value (aliasing v), which decodeRecord verifies in turn.
func decodeAside(v []byte) (asideMeta, []byte, error) {
	rest := v
	take := func(n int) ([]byte, bool) {
		if n < 0 || n > len(rest) {
			return nil, false
		}
		b := rest[:n]
		rest = rest[n:]
		return b, true
	}
	truncated := fmt.Errorf("truncated set-aside entry (%d bytes)", len(v))
	head, ok := take(13)
	if !ok {
		return asideMeta{}, nil, truncated
	}
	if head[0] != asideVersion {
		return asideMeta{}, nil, fmt.Errorf("unknown set-aside format %d (this version of stateroom reads format %d; was the file written by a newer one?)", head[0], asideVersion)
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(head[1:9]))).UTC()
	room, ok := take(int(binary.BigEndian.Uint32(head[9:13])))
	if !ok {
		return asideMeta{}, nil, truncated
	}
	n, ok := take(4)
	if !ok {
		return asideMeta{}, nil, truncated
	}
	reason, ok := take(int(binary.BigEndian.Uint32(n)))
	if !ok {
		return asideMeta{}, nil, truncated
	}
	metaLen := len(v) - len(rest)
	sum, ok := take(4)
	if !ok {
		return asideMeta{}, nil, truncated
	}
	if got, want := crc32.Checksum(v[:metaLen], castagnoli), binary.BigEndian.Uint32(sum); got != want {
		return asideMeta{}, nil, fmt.Errorf("set-aside entry checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return asideMeta{room: string(room), reason: string(reason), at: at}, rest, nil
}
