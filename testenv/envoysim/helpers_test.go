package envoysim_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/certbind/certbind/envoy"
	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoysim"
	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/pki"
)

const serverName = "envoy.certbind.test"

// world is one test's PKI: a root, an intermediate issuing the listener certificate and the
// clients.
type world struct {
	root, inter *pki.Cert
	server      *pki.Cert
	billing     *pki.Cert // subject DN only
	reports     *pki.Cert // subject DN only, another client
	svc         *pki.Cert // URI SAN
	dnsOnly     *pki.Cert // DNS SAN only
	roots       *x509.CertPool
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{root: pki.NewRoot("Test Root")}
	w.inter = w.root.Intermediate("Test Intermediate")
	w.server = w.inter.Leaf("envoy", pki.ServerAuth(), pki.DNS(serverName), pki.IP("127.0.0.1"),
		pki.URI("spiffe://certbind.test/envoy", "spiffe://certbind.test/edge"))
	w.billing = w.inter.Leaf("billing", pki.Subject("CN=billing,O=Example Corp,C=SE"))
	w.reports = w.inter.Leaf("reports", pki.Subject("CN=reports,O=Example Corp,C=SE"))
	w.svc = w.inter.Leaf("svc", pki.URI("spiffe://example.org/svc", "spiffe://example.org/second"), pki.DNS("svc.example.org"))
	w.dnsOnly = w.inter.Leaf("inventory", pki.DNS("inventory.example.org", "second.example.org"))
	w.roots = x509.NewCertPool()
	w.roots.AddCert(w.root.Cert)
	return w
}

func tlsCert(c *pki.Cert) tls.Certificate {
	return tls.Certificate{Certificate: c.ChainDER(), PrivateKey: c.Key, Leaf: c.Cert}
}

// envoyElement is the XFCC element Envoy writes for a connection of c under the shipped config.
func (w *world) envoyElement(s envoy.Summary, c *pki.Cert) string {
	var chain []*x509.Certificate
	for _, x := range c.Chain() {
		chain = append(chain, x.Cert)
	}
	d := s.Details
	return envoyxfcc.Build(w.server.Cert, chain, envoyxfcc.Details{Subject: d.Subject, Cert: d.Cert, Chain: d.Chain, URI: d.URI, DNS: d.DNS})
}

func shippedSummary(t *testing.T) envoy.Summary {
	t.Helper()
	return summaryOf(t, "../../envoy/envoy.yaml")
}

func summaryOf(t *testing.T, path string) envoy.Summary {
	t.Helper()
	b, err := envoy.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := envoy.Summarize(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const certbindConfig = `trust_anchors: [ca.pem]
xfcc: { elements: single }
clients:
  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=billing,O=Example Corp,C=SE"}
  - {client_id: reports, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=reports,O=Example Corp,C=SE"}
  - {client_id: svc, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_uri: "spiffe://example.org/svc"}
routes:
  - {path_prefix: /oauth2/token, mode: client_auth}
  - {path_prefix: /internal/, mode: identity}
`

// certbind runs the real certbind gRPC service over bufconn.
func (w *world) certbind(t *testing.T) authv3.AuthorizationClient {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "ca.pem"), w.root.PEM(), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "certbind.yaml"), []byte(certbindConfig), 0o644))
	cfg, err := policy.LoadConfig(filepath.Join(dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return serveAuthz(t, extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: cfg})}))
}

func serveAuthz(t *testing.T, srv authv3.AuthorizationServer) authv3.AuthorizationClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return dialBufconn(t, lis)
}

func dialBufconn(t *testing.T, lis *bufconn.Listener) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// fakeAuthz is an AuthorizationServer that records each CheckRequest and answers with respond.
type fakeAuthz struct {
	authv3.UnimplementedAuthorizationServer
	mu      sync.Mutex
	reqs    []*authv3.CheckRequest
	respond func(*authv3.CheckRequest) (*authv3.CheckResponse, error)
}

func (f *fakeAuthz) Check(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, proto.Clone(r).(*authv3.CheckRequest))
	f.mu.Unlock()
	if f.respond == nil {
		return &authv3.CheckResponse{Status: okStatus()}, nil
	}
	return f.respond(r)
}

func (f *fakeAuthz) last(t *testing.T) *authv3.CheckRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no CheckRequest")
	}
	return f.reqs[len(f.reqs)-1]
}

// counting counts Check calls made by the proxy.
type counting struct {
	authv3.AuthorizationClient
	n atomic.Int32
}

func (c *counting) Check(ctx context.Context, in *authv3.CheckRequest, opts ...grpc.CallOption) (*authv3.CheckResponse, error) {
	c.n.Add(1)
	return c.AuthorizationClient.Check(ctx, in, opts...)
}

// upstream is an origin that records what reaches it.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []*seenRequest
}

type seenRequest struct {
	method, uri, host string
	header            http.Header
	body              string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, &seenRequest{method: r.Method, uri: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: string(body)})
		u.mu.Unlock()
		w.Header().Set("Server", "origin")
		w.Header().Set("X-Origin", "1")
		_, _ = io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (u *upstream) last(t *testing.T) *seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("upstream never called")
	}
	return u.seen[len(u.seen)-1]
}

// start runs a proxy on 127.0.0.1 and returns its address.
func start(t *testing.T, c envoysim.Config) (*envoysim.Proxy, string) {
	t.Helper()
	p, err := envoysim.New(c)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p, l.Addr().String()
}

// config is the shipped summary with every cluster pointing at up.
func (w *world) config(s envoy.Summary, authz authv3.AuthorizationClient, up *upstream) envoysim.Config {
	return envoysim.Config{
		Summary:    s,
		ServerCert: tlsCert(w.server),
		ClientCAs:  w.roots,
		Authz:      authz,
		Upstreams:  map[string]string{"as": up.srv.URL, "api": up.srv.URL},
	}
}

// client is an HTTPS client presenting c (nil: no certificate); it records the local address
// of its last connection.
type client struct {
	*http.Client
	mu    sync.Mutex
	local string
}

func (w *world) client(c *pki.Cert, h2 bool) *client {
	cl := &client{}
	cfg := &tls.Config{RootCAs: w.roots, ServerName: serverName}
	if c != nil {
		cert := tlsCert(c)
		// A Go client sends a certificate only if it matches the server's CA list; send it anyway.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if !h2 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	tr := &http.Transport{
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				cl.mu.Lock()
				cl.local = conn.LocalAddr().String()
				cl.mu.Unlock()
			}
			return conn, err
		},
	}
	cl.Client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return cl
}

func (c *client) localAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local
}

type response struct {
	status int
	header http.Header
	body   string
	proto  int
}

func (c *client) do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), proto: resp.ProtoMajor}
}

func newRequest(t *testing.T, method, url string, body io.Reader, hdr ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return req
}

// raw sends one HTTP/1.1 request with an exact request target over a TLS connection presenting c.
func (w *world) raw(t *testing.T, addr string, c *pki.Cert, target string, hdr ...string) *http.Response {
	t.Helper()
	cert := tlsCert(c)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: w.roots, ServerName: serverName, NextProtos: []string{"http/1.1"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, serverName)
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func nullLogger() (logrus.FieldLogger, *logtest.Hook) {
	l, h := logtest.NewNullLogger()
	return l, h
}

func okStatus() *rpcstatus.Status { return &rpcstatus.Status{Code: int32(codes.OK)} }

func tlsDial(addr string, w *world, cert tls.Certificate, maxVersion uint16) (*tls.Conn, error) {
	return tls.Dial("tcp", addr, &tls.Config{RootCAs: w.roots, ServerName: serverName, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
}

func (f *fakeAuthz) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}
