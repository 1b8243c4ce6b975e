package policy

// Compiling a decoded configuration: each section is validated, its problems reported by key
// path, and only then built.

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/certbind/certbind/policy/admission"
	"github.com/certbind/certbind/policy/revocation"
)

// onEvict reports evictions from the named cache to the observer.
func onEvict[K comparable, V any](b *builder, name string) func(K, V) {
	return func(K, V) { b.obs.ObserveCache(name, "eviction") }
}

type builder struct {
	base       string
	obs        Observer                                  // LoadOptions.Observer, never nil
	httpClient *http.Client                              // LoadOptions.HTTPClient, nil for the packages' own
	transport  func(http.RoundTripper) http.RoundTripper // LoadOptions.Transport
	now        func() time.Time                          // LoadOptions.Now, nil for time.Now
	errs       []error
	files      []string
	digest     hash.Hash // of every file as read (hashFile), in files order
}

func (b *builder) errf(path, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (b *builder) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.base, p)
}

func (b *builder) readFile(path, name string) ([]byte, bool) {
	if name == "" {
		b.errf(path, "empty file name")
		return nil, false
	}
	full := b.resolve(name)
	data, err := os.ReadFile(full)
	if err != nil {
		b.errf(path, "%v", err)
		return nil, false
	}
	b.files = append(b.files, full)
	hashFile(b.digest, full, data)
	return data, true
}

// readAnchors reads trust anchor files (path is their key) into pool and returns the anchors;
// a certificate that is not a CA is an error.
func (b *builder) readAnchors(path string, names []string, pool *x509.CertPool) []*x509.Certificate {
	var anchors []*x509.Certificate
	for i, name := range names {
		at := fmt.Sprintf("%s[%d]", path, i)
		for _, cert := range b.readPathCerts(at, name) {
			if !cert.IsCA {
				b.errf(at, "%s: %q is not a CA certificate", name, cert.Subject)
				continue
			}
			pool.AddCert(cert)
			anchors = append(anchors, cert)
		}
	}
	return anchors
}

// readPathCerts reads the CA certificates of client certificate paths (trust anchors and
// intermediates): certbind enforces their directoryName constraints itself, so a critical
// nameConstraints extension it fully enforces is accepted, before the certificates go into a
// shared pool. Other trust (the introspection endpoint's tls_ca) is left to crypto/tls as is.
func (b *builder) readPathCerts(path, name string) []*x509.Certificate {
	certs := b.readCerts(path, name)
	for _, c := range certs {
		acceptNameConstraints(c)
	}
	return certs
}

// readCerts reads a PEM file of one or more certificates; anything but CERTIFICATE blocks is an
// error (a private key in a trust anchor file is a mistake worth stopping for).
func (b *builder) readCerts(path, name string) []*x509.Certificate {
	data, ok := b.readFile(path, name)
	if !ok {
		return nil
	}
	certs, err := parsePEMCertificates(data)
	if err != nil {
		b.errf(path, "%s: %v", name, err)
		return nil
	}
	return certs
}

func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		return nil, errors.New("not PEM, or data after the last PEM block")
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate in file")
	}
	return certs, nil
}

func (b *builder) compile(f *fileConfig) *Config {
	c := &Config{byID: map[string]*Client{}}
	b.trust(f, c)
	b.sources(f, c)
	b.xfcc(f, c)
	b.httpAuthz(f, c)
	b.revocation(f, c)
	b.caches(f, c)
	b.fetch(f, c)
	b.clients(f, c)
	b.routes(f, c)
	c.tokens = b.tokens(&f.Tokens, c)
	c.files = b.files
	return c
}

// trust: trust_anchors, intermediates, crl_files, crl_expired.
func (b *builder) trust(f *fileConfig, c *Config) {
	switch CRLExpiredAction(f.CRLExpired) {
	case CRLExpiredDeny, CRLExpiredIgnore:
	default:
		b.errf("crl_expired", "%q: want deny or ignore", f.CRLExpired)
	}
	c.crlExpired = CRLExpiredAction(f.CRLExpired)
	c.roots, c.intermediates = x509.NewCertPool(), x509.NewCertPool()
	c.anchors = b.readAnchors("trust_anchors", f.TrustAnchors, c.roots)
	for i, name := range f.Intermediates {
		for _, cert := range b.readPathCerts(fmt.Sprintf("intermediates[%d]", i), name) {
			c.intermediates.AddCert(cert)
			c.configuredIntermediates = append(c.configuredIntermediates, configuredIntermediate{cert: cert, sum: sha256.Sum256(cert.Raw)})
		}
	}
	for i, name := range f.CRLFiles {
		path := fmt.Sprintf("crl_files[%d]", i)
		if data, ok := b.readFile(path, name); ok {
			l, err := revocation.ParseCRL(data)
			if err != nil {
				b.errf(path, "%s: %v", name, err)
				continue
			}
			c.crls = append(c.crls, l)
		}
	}
}

// sources: certificate_sources.
func (b *builder) sources(f *fileConfig, c *Config) {
	c.Sources = Sources{Peer: b.sourceMode("certificate_sources.peer", f.CertificateSources.Peer),
		XFCC: b.sourceMode("certificate_sources.xfcc", f.CertificateSources.XFCC)}
	if c.Sources.Peer == SourceIgnore && c.Sources.XFCC == SourceIgnore {
		b.errf("certificate_sources", "peer and xfcc are both ignore: no certificate could ever be read")
	}
}

// xfcc: the XFCC parser's settings (after sources, which "last" depends on).
func (b *builder) xfcc(f *fileConfig, c *Config) {
	x := f.XFCC
	for i, p := range x.TrustedProxies {
		if p == "" || strings.ContainsAny(p, ",; \"") {
			b.errf(fmt.Sprintf("xfcc.trusted_proxies[%d]", i), "%q is not a proxy identity (a URI SAN such as spiffe://example.org/envoy)", p)
		}
	}
	elements := XFCCElements(x.Elements)
	if elements != ElementsSingle && elements != ElementsLast {
		b.errf("xfcc.elements", "%q: want single (Envoy SANITIZE_SET) or last (APPEND_FORWARD)", x.Elements)
	}
	if elements == ElementsLast && c.Sources.Peer == SourceIgnore {
		b.errf("xfcc.elements", "last needs certificate_sources.peer (accept or require): the peer certificate is what confirms the last element")
	}
	if x.MaxHeaderBytes < 0 {
		b.errf("xfcc.max_header_bytes", "must be positive")
	}
	if x.MaxChainLength < 0 {
		b.errf("xfcc.max_chain_length", "must be positive")
	}
	c.XFCC = XFCCSettings{TrustedProxies: x.TrustedProxies, Elements: elements, MaxHeaderBytes: x.MaxHeaderBytes, MaxChainLength: x.MaxChainLength}
}

// httpAuthz: the HTTP authorization endpoint's settings; header names lower-cased.
func (b *builder) httpAuthz(f *fileConfig, c *Config) {
	h := f.HTTPAuthz
	switch CertFormat(h.CertificateFormat) {
	case CertFormatXFCC, CertFormatRFC9440, CertFormatPEMURLEncoded:
	default:
		b.errf("http_authz.certificate_format", "%q: want xfcc, rfc9440 or pem_urlencoded", h.CertificateFormat)
	}
	if h.MaxBodyBytes < 0 {
		b.errf("http_authz.max_body_bytes", "must be positive")
	}
	c.HTTPAuthz = HTTPAuthzSettings{
		CertificateHeader: strings.ToLower(h.CertificateHeader), ChainHeader: strings.ToLower(h.CertificateHeader) + "-chain",
		CertificateFormat: CertFormat(h.CertificateFormat),
		ModeHeader:        strings.ToLower(h.ModeHeader), OriginalURIHeader: strings.ToLower(h.OriginalURIHeader),
		OriginalMethodHeader: strings.ToLower(h.OriginalMethodHeader), MaxBodyBytes: h.MaxBodyBytes,
		AuthRequestStatuses:  h.AuthRequestStatuses,
		OriginalSchemeHeader: strings.ToLower(h.OriginalSchemeHeader), OriginalAuthorityHeader: strings.ToLower(h.OriginalAuthorityHeader),
	}
}

// revocation: online revocation checking; the checker is built only from valid settings.
func (b *builder) revocation(f *fileConfig, c *Config) {
	r := f.Revocation
	c.revocationMode = revocation.Mode(r.Mode)
	c.revocationFailure = revocation.FailurePolicy(r.Failure)
	valid := true
	if !c.revocationMode.Valid() {
		b.errf("revocation.mode", "%q: want off, crl, ocsp or ocsp_then_crl", r.Mode)
		valid = false
	}
	if !c.revocationFailure.Valid() {
		b.errf("revocation.failure", "%q: want hard or soft", r.Failure)
	}
	if r.Timeout < 0 || r.MaxCacheTTL < 0 {
		b.errf("revocation", "durations must be positive")
	}
	if valid && c.revocationMode != revocation.ModeOff {
		c.rt.revocation = revocation.NewChecker(revocation.Options{Timeout: r.Timeout, MaxCacheTTL: r.MaxCacheTTL, OnFetch: b.obs.ObserveFetch, Client: b.instrument(b.httpClient, r.Timeout)})
	}
}

// caches: sizes and TTL; the caches are built only from valid settings.
func (b *builder) caches(f *fileConfig, c *Config) {
	c.Cache = CacheSettings(f.Cache)
	c.rt.obs = b.obs
	if f.Cache.Certificates < 0 || f.Cache.Chains <= 0 || f.Cache.Tokens <= 0 || f.Cache.TTL <= 0 {
		b.errf("cache", "sizes and ttl must be positive")
		return
	}
	c.generation = generations.Add(1)
	c.rt.chainCache, _ = lru.NewWithEvict(f.Cache.Chains, onEvict[chainKey, time.Time](b, "chains"))
	c.rt.tokenCache, _ = lru.NewWithEvict(f.Cache.Tokens, onEvict[[32]byte, cachedToken](b, "tokens"))
	c.rt.chainDoor, c.rt.tokenDoor = admission.New(f.Cache.Chains), admission.New(f.Cache.Tokens)
	c.rt.interned, _ = lru.New[[32]byte, *x509.Certificate](internedIntermediates)
	c.rt.anchoredPaths = newAnchoredPaths()
}

// fetch: jwks_fetch, the settings of every remote key set (read by clients and tokens).
func (b *builder) fetch(f *fileConfig, c *Config) {
	c.Fetch = FetchSettings(f.JWKSFetch)
	if c.Fetch.Timeout < 0 || c.Fetch.RefreshInterval < 0 || c.Fetch.MinInterval < 0 {
		b.errf("jwks_fetch", "durations must be positive")
	}
}

// clients: the registered clients, and client_auth's own settings.
func (b *builder) clients(f *fileConfig, c *Config) {
	n := len(f.Clients) + len(f.clientNodes)
	c.clients = make([]*Client, 0, n)
	c.byID = make(map[string]*Client, n)
	for i := range n {
		path := "clients[" + strconv.Itoa(i) + "]"
		var cl *Client
		if i < len(f.Clients) {
			cl = b.client(path, &f.Clients[i], c)
			f.Clients[i] = fileClient{} // compiled: let the collector have it
		} else {
			// One registration decoded, compiled and dropped at a time.
			j := i - len(f.Clients)
			var fc fileClient
			if err := f.clientNodes[j].Decode(&fc); err != nil {
				b.errf(path, "%v", err)
				continue
			}
			f.clientNodes[j] = nil
			cl = b.client(path, &fc, c)
		}
		if cl == nil {
			continue
		}
		if _, dup := c.byID[cl.ID]; dup {
			b.errf(path+".client_id", "duplicate client_id %q", cl.ID)
			continue
		}
		c.byID[cl.ID] = cl
		c.clients = append(c.clients, cl)
	}
	if len(f.TrustAnchors) == 0 {
		for _, cl := range c.clients {
			if cl.Method == MethodPKI && cl.roots == nil {
				b.errf("trust_anchors", "client %q uses tls_client_auth without its own trust_anchors, and no global trust_anchors are set", cl.ID)
			}
		}
	}
	c.index = newClientIndex(c.clients)
	c.maxFormBytes = f.ClientAuth.MaxFormBytes
	if f.ClientAuth.MaxFormBytes < 0 {
		b.errf("client_auth.max_form_bytes", "must be positive")
	}
}

// routes: after clients, which routes[].clients names.
func (b *builder) routes(f *fileConfig, c *Config) {
	for i := range f.Routes {
		if rt, ok := b.route(fmt.Sprintf("routes[%d]", i), &f.Routes[i], f, c); ok {
			c.routes = append(c.routes, rt)
		}
	}
	c.warnings = append(c.warnings, shadowedRoutes(f.Routes, c.routes)...)
}

func (b *builder) sourceMode(path, v string) SourceMode {
	switch m := SourceMode(v); m {
	case SourceAccept, SourceRequire, SourceIgnore:
		return m
	}
	b.errf(path, "%q: want accept, require or ignore", v)
	return SourceIgnore
}

// instrument wraps c's transport with LoadOptions.Transport (a client of its own, c is shared),
// or returns c unchanged without one. A nil c becomes a client bounded by timeout, as the
// fetching packages' own default is.
func (b *builder) instrument(c *http.Client, timeout time.Duration) *http.Client {
	if b.transport == nil {
		return c
	}
	if c == nil {
		return &http.Client{Transport: b.transport(http.DefaultTransport), Timeout: timeout}
	}
	w := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	w.Transport = b.transport(rt)
	return &w
}
