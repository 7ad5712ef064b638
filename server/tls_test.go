package server

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stateroom-go/stateroom/client"
	"github.com/stateroom-go/stateroom/internal/testcert"
)

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- ServeTLS(ctx, ln, certFile, keyFile, probeFactory(&eventLog{}, ""), Options{Logger: quietLogger})
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("ServeTLS: %v", err)
		}
	}()

	c := dialURL(t, "wss://"+addr+"/ws/secure", client.Options{TLSConfig: &tls.Config{RootCAs: pool}})
	expectPrefix(t, c, "hello 1 room=secure")
	send(t, c, "echo:over tls")
	expect(t, c, "over tls")

	// A client that does not trust the certificate cannot connect.
	if _, err := tryDial(t, "wss://"+addr+"/ws/secure", client.Options{}); err == nil {
		t.Error("a client without the test CA connected")
	}
	// Plain WebSocket to a TLS port fails too.
	if _, err := tryDial(t, "ws://"+addr+"/ws/secure", client.Options{}); err == nil {
		t.Error("a plain ws:// client connected to the TLS port")
	}
}

func TestServeTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	f := probeFactory(&eventLog{}, "")
	for _, tc := range []struct{ cert, key, want string }{
		{"", "", "give both PEM files"},
		{filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing-key.pem"), "cannot load the TLS certificate"},
	} {
		err := ListenAndServeTLS(context.Background(), "127.0.0.1:0", tc.cert, tc.key, f, Options{Logger: quietLogger})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cert %q key %q: got %v, want an error with %q", tc.cert, tc.key, err, tc.want)
		}
	}
}
