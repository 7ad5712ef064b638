//go:build unix

package main

import (
	"net"
	"syscall"
	"testing"
)

// TestListenNoKeepAlive checks that serve and dev listen as
// server.ListenAndServe does: accepted connections have no TCP keep-alive
// (the heartbeat finds dead clients). A plain net.Listen turns it on for
// every connection it accepts.
func TestListenNoKeepAlive(t *testing.T) {
	ln, err := listen("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-dialed; err != nil {
		t.Fatal(err)
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if on != 0 {
		t.Fatal("an accepted connection has TCP keep-alive on: listen does not go through server.Listen")
	}
}
