package server

import (
	"encoding/base64"
	"errors"
	"net/http"
)

// errBadKey and errBadVersion say what is wrong with a handshake.
var (
	errBadKey     = errors.New("bad WebSocket handshake: Sec-WebSocket-Key must be the base64 encoding of 16 random bytes (RFC 6455, section 4.1); use a WebSocket client library")
	errBadVersion = errors.New("bad WebSocket handshake: this server speaks WebSocket version 13 (Sec-WebSocket-Version: 13)")
)

// checkHandshake checks what the upgrader would refuse in a request that
// asks for a WebSocket (isUpgrade holds), so that the check happens before
// the room is joined: a request that cannot become a WebSocket must not
// create a room, run a factory or hold a room slot. It also refuses a key
// that is not base64 of 16 bytes, which RFC 6455 (section 4.2.1, item 5)
// requires and the upgrader lets through.
func checkHandshake(r *http.Request) error {
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
		return errBadVersion
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 || len(keys[0]) != 24 {
		return errBadKey
	}
	var b [18]byte // 24 base64 characters decode to at most 18 bytes
	n, err := base64.StdEncoding.Decode(b[:], []byte(keys[0]))
	if err != nil || n != 16 {
		return errBadKey
	}
	return nil
}
