package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/stateroom-go/stateroom/server"
)

// shutdownTimeout bounds the graceful stop after SIGINT/SIGTERM: clients
// get their 1001 close and services their Disconnects within it.
const shutdownTimeout = 10 * time.Second

// listen opens the TCP listener, turning "address in use" into advice.
func listen(host string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %d on %s is in use (another stateroom?); stop that program or choose another port with -p, e.g. -p %d", port, host, port+1)
	}
	if errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("not allowed to listen on %s (ports below 1024 need privileges); choose another port with -p, e.g. -p 8080", addr)
	}
	return nil, fmt.Errorf("cannot listen on %s: %w; check --host and -p", addr, err)
}

// listen opens the listener the flags ask for: TCP on --host and --port,
// in TLS with --tls-cert and --tls-key. The certificate is loaded before the
// port is taken, so a bad file fails at once.
func (f *ServerFlags) listen() (net.Listener, error) {
	var cfg *tls.Config
	if f.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("cannot load --tls-cert %s and --tls-key %s: %w; give PEM files, the key belonging to the certificate", f.TLSCert, f.TLSKey, err)
		}
		cfg = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// HTTP/1.1 only: a WebSocket is a hijacked HTTP/1.1
			// connection, and a browser that negotiated HTTP/2 would try
			// WebSocket over HTTP/2 (RFC 8441), which the server does not
			// speak.
			NextProtos: []string{"http/1.1"},
		}
	}
	ln, err := listen(f.Host, f.Port)
	if err != nil || cfg == nil {
		return ln, err
	}
	return tls.NewListener(ln, cfg), nil
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

// serveUntilDone serves srv on ln until ctx is done, then shuts down
// gracefully: the room server first (its clients are hijacked connections
// http.Server does not track; they get close 1001), then the HTTP server.
// Both serve and dev run their server through here. handshake bounds the
// reading of request headers (--handshake-timeout), as server.Serve does.
func serveUntilDone(ctx context.Context, ln net.Listener, srv *server.Server, logger *slog.Logger, handshake time.Duration) error {
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: handshake,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	select {
	case err := <-errc:
		// Serve failed on its own (the listener broke); stop the rooms.
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return errors.Join(fmt.Errorf("serving: %w", err), srv.Shutdown(sctx))
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Clients that did not answer the close handshake in time were
		// cut off: the stop is still complete, not a failure.
		logger.Warn("some clients did not finish closing in time; their connections were dropped", "timeout", shutdownTimeout)
		err = nil
	}
	if herr := hs.Shutdown(sctx); herr != nil {
		err = errors.Join(err, herr)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
