package envoysim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/envoy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
)

// Config is what a Proxy needs. Everything Envoy reads from its bootstrap comes from Summary
// (and Paths); certificates and addresses, which the bootstrap names as files and DNS names,
// are passed directly.
type Config struct {
	// Summary is envoy.Summarize of the config to simulate.
	Summary envoy.Summary
	// Paths is the connection manager's path handling; nil means ShippedPaths (see PathsOf).
	Paths *PathOptions
	// ServerCert is the listener's certificate (chain and key). Its leaf's URI SANs are the By=
	// pairs of XFCC and its principal is attributes.destination.principal.
	ServerCert tls.Certificate
	// ClientCAs is the validation context's trusted_ca. Required: without it Envoy does not ask
	// for a client certificate at all. With Summary.AcceptUntrusted any client certificate is
	// accepted, but one is still required.
	ClientCAs *x509.CertPool
	// Authz is the ext_authz gRPC service (cluster Summary.AuthzCluster).
	Authz authv3.AuthorizationClient
	// Upstreams maps each route cluster to a base URL such as "http://127.0.0.1:4321" (no path).
	Upstreams map[string]string
	// Logger receives one line per request; default: discard.
	Logger logrus.FieldLogger
}

// Proxy is an Envoy stand-in: an HTTPS front proxy with the HTTP connection manager, ext_authz
// and router behaviour of the summarized config.
type Proxy struct {
	s            envoy.Summary
	paths        PathOptions
	cert         tls.Certificate
	leaf         *x509.Certificate
	localName    string // principal of the listener certificate
	clientCAs    *x509.CertPool
	authz        authv3.AuthorizationClient
	upstreams    map[string]*url.URL
	mode         envoyxfcc.ForwardMode
	details      envoyxfcc.Details
	log          logrus.FieldLogger
	reverseProxy *httputil.ReverseProxy

	mu      sync.Mutex
	servers []*http.Server
	closed  bool
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("envoysim: proxy closed")

// New checks c and makes a Proxy. Like Envoy at startup, it refuses a route whose cluster has
// no upstream.
func New(c Config) (*Proxy, error) {
	p := &Proxy{s: c.Summary, cert: c.ServerCert, clientCAs: c.ClientCAs, authz: c.Authz, log: c.Logger}
	if p.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		p.log = l
	}
	p.paths = ShippedPaths
	if c.Paths != nil {
		p.paths = *c.Paths
	}
	if err := p.paths.validate(); err != nil {
		return nil, err
	}
	if len(c.ServerCert.Certificate) == 0 || c.ServerCert.PrivateKey == nil {
		return nil, errors.New("envoysim: ServerCert has no certificate or key")
	}
	leaf := c.ServerCert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.ServerCert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("envoysim: ServerCert: %w", err)
		}
	}
	p.leaf = leaf
	p.localName = principal(leaf)
	if c.ClientCAs == nil {
		return nil, errors.New("envoysim: ClientCAs is required (trusted_ca): without it Envoy asks for no client certificate")
	}
	if c.Authz == nil {
		return nil, errors.New("envoysim: Authz is required")
	}
	if p.s.AuthzTimeout <= 0 {
		return nil, errors.New("envoysim: Summary.AuthzTimeout must be positive (Summarize fills in Envoy's 200ms)")
	}
	if p.s.StatusOnError < 100 || p.s.StatusOnError > 599 {
		return nil, fmt.Errorf("envoysim: Summary.StatusOnError %d is not an HTTP status", p.s.StatusOnError)
	}
	switch m := envoyxfcc.ForwardMode(p.s.ForwardMode); m {
	case envoyxfcc.Sanitize, envoyxfcc.ForwardOnly, envoyxfcc.AppendForward, envoyxfcc.SanitizeSet, envoyxfcc.AlwaysForwardOnly:
		p.mode = m
	default:
		return nil, fmt.Errorf("envoysim: unknown forward_client_cert_details %q", p.s.ForwardMode)
	}
	d := p.s.Details
	p.details = envoyxfcc.Details{Subject: d.Subject, Cert: d.Cert, Chain: d.Chain, URI: d.URI, DNS: d.DNS}

	p.upstreams = map[string]*url.URL{}
	for name, raw := range c.Upstreams {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("envoysim: upstream %q: %q is not a base URL like http://host:port", name, raw)
		}
		p.upstreams[name] = u
	}
	for i, r := range p.s.Routes {
		// Both empty is `prefix: ""`, which matches every path.
		if r.Prefix != "" && r.Path != "" {
			return nil, fmt.Errorf("envoysim: route %d: both prefix and path", i)
		}
		if r.DirectResponseStatus == 0 && r.Cluster == "" {
			return nil, fmt.Errorf("envoysim: route %d: neither cluster nor direct response", i)
		}
		if r.DirectResponseStatus != 0 && (r.DirectResponseStatus < 100 || r.DirectResponseStatus > 599) {
			return nil, fmt.Errorf("envoysim: route %d: direct response status %d", i, r.DirectResponseStatus)
		}
		if r.Cluster != "" && p.upstreams[r.Cluster] == nil {
			return nil, fmt.Errorf("envoysim: route %d: unknown cluster %q (no entry in Upstreams)", i, r.Cluster)
		}
		if r.WithRequestBody && r.MaxRequestBytes == 0 {
			return nil, fmt.Errorf("envoysim: route %d: with_request_body without max_request_bytes", i)
		}
	}
	p.reverseProxy = p.newReverseProxy()
	return p, nil
}

// TLSConfig is the listener's DownstreamTlsContext: TLS 1.2 or later, ALPN h2 and http/1.1, a
// client certificate required (require_client_certificate) and verified against ClientCAs
// with the intermediates the client sent, for clientAuth; with ACCEPT_UNTRUSTED any
// certificate is accepted. The CA names of ClientCAs are sent in the CertificateRequest either
// way, as Envoy does with trusted_ca.
func (p *Proxy) TLSConfig() *tls.Config {
	cfg := &tls.Config{
		Certificates: []tls.Certificate{p.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		ClientCAs:    p.clientCAs,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if !p.s.AcceptUntrusted {
		cfg.VerifyPeerCertificate = p.verifyClient
	}
	return cfg
}

func (p *Proxy) verifyClient(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("envoysim: no client certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("envoysim: client certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         p.clientCAs,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err
}

// Serve accepts connections on l, terminates TLS with TLSConfig and serves HTTP/1.1 and HTTP/2
// until Close, when it returns nil.
func (p *Proxy) Serve(l net.Listener) error {
	srv := &http.Server{
		Handler:           p,
		TLSConfig:         p.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(debugWriter{p.log}, "", 0),
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.servers = append(p.servers, srv)
	p.mu.Unlock()
	err := srv.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops every Serve and closes their connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for _, s := range p.servers {
		errs = append(errs, s.Close())
	}
	p.servers = nil
	return errors.Join(errs...)
}

// debugWriter sends net/http's own messages (TLS handshake failures) to the logger at debug.
type debugWriter struct{ log logrus.FieldLogger }

func (w debugWriter) Write(b []byte) (int, error) {
	w.log.Debug(string(trimNewline(b)))
	return len(b), nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
