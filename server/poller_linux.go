package server

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches the sockets of idle connections with an epoll instance of
// its own, so that a connection waiting for its client's next message holds
// no goroutine: a parked goroutine costs its stack and descriptor, most of
// what an idle connection would otherwise cost (docs/PERFORMANCE.md). When a
// socket becomes readable, or hangs up, the poller starts a reader for it.
//
// Every socket stays registered with Go's own network poller too; this one
// only adds a one-shot readiness watch while its connection is parked.
// Registrations use EPOLLONESHOT, so each arming yields at most one event,
// and they go away by themselves when the socket is closed. The event data
// carries the descriptor and the connection's registration generation, so a
// late event for a closed socket whose number was reused is recognised and
// dropped.
type poller struct {
	epfd, stopfd int
	done         chan struct{}

	mu    sync.Mutex
	conns []*conn // by descriptor; nil where no connection is registered
	gen   uint32  // the last registration generation handed out
}

// newPoller returns a running poller, or an error when the process cannot
// create one (out of descriptors); the server then keeps a goroutine per
// idle connection.
func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(stopfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopfd)
		return nil, err
	}
	p := &poller{epfd: epfd, stopfd: stopfd, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// socketFD returns nc's descriptor, or -1 when nc is not a plain socket the
// poller can watch. Only the standard library's own socket types qualify: a
// TLS connection, or any wrapper, may hold decoded bytes in user space, and
// then readiness of the socket says nothing about whether a message can be
// read.
func socketFD(nc net.Conn) int {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return -1
	}
	return fd
}

// register enters c in the poller's table under its descriptor, giving it
// a registration generation the first time. The caller, c's reader, calls
// it before c is parked, so that nothing of c it writes is written while
// another reader may run.
func (p *poller) register(c *conn) {
	fd := c.fd
	p.mu.Lock()
	if c.pollGen == 0 {
		p.gen++
		if p.gen == 0 {
			p.gen = 1
		}
		c.pollGen = p.gen
	}
	if fd >= len(p.conns) {
		p.conns = append(p.conns, make([]*conn, fd+1-len(p.conns))...)
	}
	p.conns[fd] = c
	p.mu.Unlock()
}

// watch arms a one-shot readiness watch on the socket of c, which is
// registered. It reports false when the socket cannot be watched (closed
// under the connection); the caller then reads as if the poller did not
// exist. It reads only c's descriptor and generation, which do not change
// once registered.
func (p *poller) watch(c *conn) bool {
	fd := c.fd
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(fd),
		Pad:    int32(c.pollGen),
	}
	// MOD re-arms a registration that fired; the first watch of a socket
	// has none yet. Either may find the other case when two readers of
	// the same connection overlap for an instant (see conn.park).
	err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
	if errors.Is(err, unix.ENOENT) {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
		if errors.Is(err, unix.EEXIST) {
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
		}
	}
	return err == nil
}

// forget drops c from the poller's table before its socket is closed, so
// that the descriptor's next owner is not mistaken for it.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	if c.fd < len(p.conns) && p.conns[c.fd] == c {
		p.conns[c.fd] = nil
	}
	p.mu.Unlock()
}

// run waits for readiness and wakes the connections it belongs to, until
// stop.
func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // EBADF or EINVAL: the epoll instance is gone
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == p.stopfd {
				return
			}
			var c *conn
			p.mu.Lock()
			if fd := int(ev.Fd); fd < len(p.conns) {
				c = p.conns[fd]
				if c != nil && c.pollGen != uint32(ev.Pad) {
					c = nil // a late event for the socket's previous owner
				}
			}
			p.mu.Unlock()
			if c != nil {
				c.unpark()
			}
		}
	}
}

// stop ends the poller and releases its descriptors. The server calls it
// once every connection has ended.
func (p *poller) stop() {
	var one = [8]byte{1}
	unix.Write(p.stopfd, one[:])
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.stopfd)
}
