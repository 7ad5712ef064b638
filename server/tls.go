package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/stateroom-go/stateroom"
)

// ServeTLS is [Serve] with TLS: clients connect with wss:// and https://.
// certFile and keyFile are PEM files, as for http.Server.ServeTLS (the
// certificate file may hold the chain after the leaf). They are loaded
// before serving, so a missing or bad file is an error at once. The server
// speaks HTTP/1.1 only, which every WebSocket client uses. It closes ln.
func ServeTLS(ctx context.Context, ln net.Listener, certFile, keyFile string, f stateroom.Factory, opts Options) error {
	s, err := New(f, opts)
	if err != nil {
		ln.Close()
		return err
	}
	return s.ServeTLS(ctx, ln, certFile, keyFile)
}

// ListenAndServeTLS listens on the TCP address addr and calls [ServeTLS].
func ListenAndServeTLS(ctx context.Context, addr, certFile, keyFile string, f stateroom.Factory, opts Options) error {
	cfg, err := loadTLS(certFile, keyFile)
	if err != nil {
		return err
	}
	return listenAndServe(ctx, addr, f, opts, cfg)
}

// loadTLS loads a certificate and its key into a server TLS config.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("server: TLS needs a certificate file and a key file, got %q and %q; give both PEM files (for a local test: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -subj /CN=localhost)", certFile, keyFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server: cannot load the TLS certificate %s and key %s: %w; check that both are PEM files and that the key belongs to the certificate", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
