// Package stack runs the whole certbind test bed in one process, on 127.0.0.1, with no Docker
// and no Envoy: the test PKI, certbind as certbind serve runs it (package server: gRPC and the
// HTTP endpoint over mutual TLS where only Envoy's certificate may call, reload, health, the
// admin listener with metrics, drain), the demo authorization server and API, and two Envoy
// stand-ins driven by the shipped envoy.yaml and envoy-self-signed.yaml. The demo, the
// end-to-end tests and the soak use it.
//
//	s, err := stack.Start(stack.Options{})
//	defer s.Close()
//	resp, err := s.Client(testbed.Billing).Post(s.FrontURL+"/oauth2/token", ...)
package stack

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/certbind/certbind/envoy"
	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/envoysim"
	"github.com/certbind/certbind/testenv/testbed"
	"github.com/certbind/certbind/tracing"
)

// Options tune a Stack. The zero value is the demo.
type Options struct {
	Dir    string             // working directory for the PKI and config; a temporary one when empty
	Logger logrus.FieldLogger // certbind's log, decisions included; discarded when nil
	Config []byte             // certbind.yaml; testbed.Config when nil
	// ReusePKI: Dir/pki already holds a test bed PKI (testbed.GeneratePKI), which the stack
	// uses instead of generating one, so that parts started before the stack can share it.
	ReusePKI bool
	// Upstreams replaces the proxies' upstreams by name ("as", "api": URLs such as
	// http://127.0.0.1:8080); the demo authorization server and API serve the others.
	Upstreams map[string]string
	// Tracing is certbind's tracing (server.Config.Tracing); nil is off.
	Tracing *tracing.Tracing
}

// Stack is a running test bed.
type Stack struct {
	Dir      string // holds pki/ and certbind.yaml
	PKI      string // the PKI directory
	FrontURL string // the Envoy stand-in for PKI clients (envoy.yaml)
	SelfURL  string // the stand-in for self-signed clients (envoy-self-signed.yaml)
	// certbind's listeners; the addresses stay the same across RestartCertbind.
	GRPCAddr string // ext_authz over mutual TLS: only Envoy's client certificate may call
	HTTPAddr string // the HTTP authorization endpoint, with the same TLS
	AdminURL string // plain HTTP: /healthz, /readyz, /metrics

	roots    *x509.CertPool
	certbind *certbind
	closers  []func()
	tmp      bool
}

// Start brings the stack up. Close it when done.
func Start(o Options) (_ *Stack, err error) {
	s := &Stack{Dir: o.Dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "certbind-stack-"); err != nil {
			return nil, err
		}
		s.tmp = true
	}
	s.PKI = filepath.Join(s.Dir, "pki")
	if o.ReusePKI && o.Dir == "" {
		return nil, fmt.Errorf("ReusePKI needs a Dir")
	}
	if !o.ReusePKI {
		if err := testbed.GeneratePKI(s.PKI, time.Now(), 2*time.Hour); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	cfgData := o.Config
	if cfgData == nil {
		cfgData = testbed.Config
	}
	cfgPath := filepath.Join(s.Dir, "certbind.yaml")
	if err := os.WriteFile(cfgPath, cfgData, 0o644); err != nil {
		return nil, err
	}
	s.roots = x509.NewCertPool()
	caPEM, err := os.ReadFile(s.file(testbed.FileCA))
	if err != nil {
		return nil, err
	}
	s.roots.AppendCertsFromPEM(caPEM)

	if s.certbind, err = startCertbind(s, cfgPath, o.Logger, o.Tracing); err != nil {
		return nil, fmt.Errorf("certbind: %w", err)
	}
	s.closers = append(s.closers, s.certbind.stop)
	s.GRPCAddr, s.HTTPAddr, s.AdminURL = s.certbind.grpc, s.certbind.http, "http://"+s.certbind.admin
	authz, err := s.authzClient()
	if err != nil {
		return nil, err
	}

	key, err := testbed.LoadSigningKey(s.file(testbed.FileASKey))
	if err != nil {
		return nil, err
	}
	asURL, err := s.serveHTTP(demoapp.NewAS(demoapp.ASConfig{Issuer: testbed.Issuer, Audience: testbed.Audience, Key: key, KeyID: testbed.ASKeyID}))
	if err != nil {
		return nil, err
	}
	apiURL, err := s.serveHTTP(demoapp.NewAPI())
	if err != nil {
		return nil, err
	}
	upstreams := map[string]string{"as": asURL, "api": apiURL}
	for name, url := range o.Upstreams {
		upstreams[name] = url
	}
	if s.FrontURL, err = s.startProxy(envoy.ShippedFrontProxy, authz, upstreams); err != nil {
		return nil, fmt.Errorf("envoy stand-in: %w", err)
	}
	if s.SelfURL, err = s.startProxy(envoy.ShippedSelfSigned, authz, upstreams); err != nil {
		return nil, fmt.Errorf("envoy stand-in (self-signed): %w", err)
	}
	return s, nil
}

func (s *Stack) file(name string) string { return filepath.Join(s.PKI, name) }

// Close stops everything and removes a temporary directory.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if s.tmp {
		os.RemoveAll(s.Dir)
	}
}

// RestartCertbind stops certbind (draining, as on SIGTERM) if it runs and starts a new one on
// the same addresses, as a process restart would: the configuration is loaded afresh, and the
// proxies reconnect.
func (s *Stack) RestartCertbind() error {
	return s.certbind.start()
}

// StopCertbind stops certbind until RestartCertbind: the proxies then fail closed.
func (s *Stack) StopCertbind() { s.certbind.stop() }

// Client returns an HTTPS client presenting the named test certificate (testbed.Billing, ...).
// It presents the certificate whatever CAs the server advertises, so self-signed and untrusted
// certificates are sent too (a Go client otherwise holds back a certificate whose issuer the
// server did not list).
func (s *Stack) Client(name string) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(s.file(testbed.CertFile(name)), s.file(testbed.KeyFile(name)))
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{RootCAs: s.roots, ServerName: "envoy", MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}, nil
}

func (s *Stack) serveHTTP(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	s.closers = append(s.closers, func() { srv.Close() })
	return "http://" + l.Addr().String(), nil
}

func (s *Stack) startProxy(yaml []byte, authz authv3.AuthorizationClient, upstreams map[string]string) (string, error) {
	b, err := envoy.Load(yaml)
	if err != nil {
		return "", err
	}
	sum, err := envoy.Summarize(b)
	if err != nil {
		return "", err
	}
	paths, err := envoysim.PathsOf(b)
	if err != nil {
		return "", err
	}
	cert, err := tls.LoadX509KeyPair(s.file(testbed.FileEnvoyCert), s.file(testbed.FileEnvoyKey))
	if err != nil {
		return "", err
	}
	p, err := envoysim.New(envoysim.Config{Summary: sum, Paths: &paths, ServerCert: cert, ClientCAs: s.roots, Authz: authz, Upstreams: upstreams})
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go p.Serve(l)
	s.closers = append(s.closers, func() { p.Close() })
	return "https://" + l.Addr().String(), nil
}

// authzClient is Envoy's side of the certbind cluster: HTTP/2 over mutual TLS.
func (s *Stack) authzClient() (authv3.AuthorizationClient, error) {
	cert, err := tls.LoadX509KeyPair(s.file(testbed.FileEnvoyClientCert), s.file(testbed.FileEnvoyClientKey))
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: s.roots, ServerName: "certbind", MinVersion: tls.VersionTLS12}
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn), nil
}
