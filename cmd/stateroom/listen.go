package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"

	"github.com/stateroom-go/stateroom/server"
)

// listen opens the TCP listener through server.Listen, the path
// server.ListenAndServe takes, so serve and dev accept connections as a
// program using the library does (no TCP keep-alive: the heartbeat finds
// dead clients). Its errors become advice that names --host and -p, which
// is how the user chose the address.
func listen(host string, port int) (net.Listener, error) {
	ln, err := server.Listen(net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, listenError(host, port, err)
	}
	return ln, nil
}

// listenError turns an error of server.Listen into advice for the command
// line. server.Listen's own advice suggests another address; here the
// flags to change are named.
func listenError(host string, port int, err error) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		next := port + 1
		if next > 65535 {
			next = 8080
		}
		return fmt.Errorf("port %d on %s is in use (another stateroom?); stop that program or choose another port with -p, e.g. -p %d", port, host, next)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("not allowed to listen on %s (ports below 1024 need privileges); choose another port with -p, e.g. -p 8080", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("cannot listen on %s: --host %s is not an address of this machine; use 127.0.0.1, or 0.0.0.0 for every address", addr, host)
	}
	// The cause alone: server.Listen's message repeats the address.
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	return fmt.Errorf("cannot listen on %s: %w; check --host and -p", addr, err)
}

// listen opens the TCP listener on --host and --port. With --tls-cert and
// --tls-key it first checks that the key pair loads, so a bad file fails
// before the port is taken and before the ready line; serve then loads it
// for real (server.Server.ServeTLS).
func (f *ServerFlags) listen() (net.Listener, error) {
	if f.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey); err != nil {
			return nil, fmt.Errorf("cannot load --tls-cert %s and --tls-key %s: %w; give PEM files, the key belonging to the certificate", f.TLSCert, f.TLSKey, err)
		}
	}
	return listen(f.Host, f.Port)
}

// serve serves srv on ln until ctx is done, in TLS with --tls-cert and
// --tls-key, then stops it gracefully. Clients that did not finish their
// close handshake within the server's bound were cut off: the stop is still
// complete, so that is a warning, not a failure.
func (f *ServerFlags) serve(ctx context.Context, ln net.Listener, srv *server.Server, logger *slog.Logger) error {
	var err error
	if f.TLSCert != "" {
		err = srv.ServeTLS(ctx, ln, f.TLSCert, f.TLSKey)
	} else {
		err = srv.Serve(ctx, ln)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("some clients did not finish closing in time; their connections were dropped")
		return nil
	}
	return err
}

// urls returns the HTTP base URL and the WebSocket URL pattern of ln (https
// and wss when secure), for the ready line. A wildcard host is shown as
// 127.0.0.1 so the URL can be clicked.
func urls(ln net.Listener, secure bool) (httpURL, wsURL string) {
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	hp := net.JoinHostPort(host, port)
	if secure {
		return "https://" + hp, "wss://" + hp + "/ws/{room}"
	}
	return "http://" + hp, "ws://" + hp + "/ws/{room}"
}
