// Package wsclient holds the WebSocket clients of Stateroom's fault tests
// (test/faults) and soak run (test/soak): a [Raw] client that completes the
// handshake by hand and then writes any bytes, valid frames or not, and a
// [Group] of healthy clients that checks every message reaches every one of
// them exactly once and in order.
//
// The two sides are independent of the server on purpose: the raw client
// encodes frames itself (so it can break every rule of RFC 6455), and the
// healthy clients are gorilla/websocket connections.
package wsclient
