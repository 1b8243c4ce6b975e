package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/testenv/pki"
)

func TestServeRefusesOtherCallers(t *testing.T) {
	f := newFixture(t)
	envoyCert := f.root.Leaf("envoy", pki.URI("spiffe://certbind.test/envoy"))
	intruder := f.root.Leaf("intruder", pki.URI("spiffe://certbind.test/intruder"))
	srvCert := f.root.Leaf("certbind", pki.ServerAuth(), pki.DNS("certbind"), pki.IP("127.0.0.1"))
	f.write(t, "server.pem", srvCert.PEM())
	f.write(t, "server-key.pem", srvCert.KeyPEM())
	c := f.config("certbind.yaml")
	c.TLS = listener.Config{Cert: f.path("server.pem"), Key: f.path("server-key.pem"), ClientCA: f.path("ca.pem"),
		AllowedCallers: "spiffe://certbind.test/envoy"}
	grpcAddr := start(t, c).addrs.GRPC.String()
	roots := x509.NewCertPool()
	roots.AddCert(f.root.Cert)
	check := func(client *pki.Cert) error {
		tc := &tls.Config{RootCAs: roots, ServerName: "certbind"}
		if client != nil {
			tc.Certificates = []tls.Certificate{{Certificate: [][]byte{client.DER()}, PrivateKey: client.Key}}
		}
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(false))
		return err
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = check(envoyCert); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("Envoy refused: %v", err)
	}
	if err := check(intruder); err == nil {
		t.Error("a caller outside AllowedCallers got an answer")
	}
	if err := check(nil); err == nil {
		t.Error("a caller without a certificate got an answer")
	}
}

func TestServeReloadsTLSFiles(t *testing.T) {
	f := newFixture(t)
	first := f.root.Leaf("certbind", pki.ServerAuth(), pki.DNS("certbind"))
	f.write(t, "server.pem", first.PEM())
	f.write(t, "server-key.pem", first.KeyPEM())
	c := f.config("certbind.yaml")
	// Recheck: the files on every handshake.
	c.TLS = listener.Config{Cert: f.path("server.pem"), Key: f.path("server-key.pem"), Recheck: time.Nanosecond}
	grpcAddr := start(t, c).addrs.GRPC.String()
	roots := x509.NewCertPool()
	roots.AddCert(f.root.Cert)
	serverSerial := func() string {
		var conn *tls.Conn
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if conn, err = tls.Dial("tcp", grpcAddr, &tls.Config{RootCAs: roots, ServerName: "certbind", NextProtos: []string{"h2"}}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("ALPN %q, want h2", p)
		}
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serverSerial(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serving %s", got)
	}
	second := f.root.Leaf("certbind", pki.ServerAuth(), pki.DNS("certbind"))
	f.write(t, "server-key.pem", second.KeyPEM())
	f.write(t, "server.pem", second.PEM())
	if got := serverSerial(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after rotation still serving %s", got)
	}
}
