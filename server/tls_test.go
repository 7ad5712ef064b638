package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "stateroom test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
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

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: waitTimeout}
	c, _, err := d.Dial("wss://"+addr+"/ws/secure", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer c.Close()
	expectPrefix(t, c, "hello 1 room=secure")
	send(t, c, "echo:over tls")
	expect(t, c, "over tls")

	// A client that does not trust the certificate cannot connect.
	if _, _, err := websocket.DefaultDialer.Dial("wss://"+addr+"/ws/secure", nil); err == nil {
		t.Error("a client without the test CA connected")
	}
	// Plain WebSocket to a TLS port fails too.
	if _, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/secure", nil); err == nil {
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
