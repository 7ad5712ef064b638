//go:build !linux

package server

import (
	"errors"
	"net"
)

// poller is Linux-only (epoll); elsewhere an idle connection keeps a
// goroutine waiting in its read.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("readiness polling needs Linux") }

func socketFD(net.Conn) int { return -1 }

func (*poller) register(*conn)   {}
func (*poller) watch(*conn) bool { return false }
func (*poller) forget(*conn)     {}
func (*poller) stop()            {}
