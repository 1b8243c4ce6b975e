package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.yaml.in/yaml/v3"

	"github.com/certbind/certbind/policy/dn"
	"github.com/certbind/certbind/policy/jwks"
	"github.com/certbind/certbind/policy/revocation"
)

// The YAML document, decoded strictly. Keys use the RFC 7591 / RFC 8705 client metadata names.
type fileConfig struct {
	TrustAnchors       []string       `yaml:"trust_anchors"`
	Intermediates      []string       `yaml:"intermediates"`
	CRLFiles           []string       `yaml:"crl_files"`
	CRLExpired         string         `yaml:"crl_expired"`
	CertificateSources fileSources    `yaml:"certificate_sources"`
	XFCC               fileXFCC       `yaml:"xfcc"`
	JWKSFetch          fileFetch      `yaml:"jwks_fetch"`
	Clients            []fileClient   `yaml:"clients"`
	Routes             []fileRoute    `yaml:"routes"`
	ClientAuth         fileClientAuth `yaml:"client_auth"`
	Tokens             fileTokens     `yaml:"tokens"`
	HTTPAuthz          fileHTTPAuthz  `yaml:"http_authz"`
	Cache              fileCache      `yaml:"cache"`
	Revocation         fileRevocation `yaml:"revocation"`
}

type fileRevocation struct {
	Mode        string        `yaml:"mode"`
	Failure     string        `yaml:"failure"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxCacheTTL time.Duration `yaml:"max_cache_ttl"`
}

type fileCache struct {
	Certificates int           `yaml:"certificates"`
	Chains       int           `yaml:"chains"`
	Tokens       int           `yaml:"tokens"`
	TTL          time.Duration `yaml:"ttl"`
}

type fileHTTPAuthz struct {
	CertificateHeader    string `yaml:"certificate_header"`
	CertificateFormat    string `yaml:"certificate_format"`
	ModeHeader           string `yaml:"mode_header"`
	OriginalURIHeader    string `yaml:"original_uri_header"`
	OriginalMethodHeader string `yaml:"original_method_header"`
	MaxBodyBytes         int    `yaml:"max_body_bytes"`
	AuthRequestStatuses  bool   `yaml:"auth_request_statuses"`
}

type fileSources struct {
	Peer string `yaml:"peer"`
	XFCC string `yaml:"xfcc"`
}

type fileXFCC struct {
	TrustedProxies []string `yaml:"trusted_proxies"`
	Elements       string   `yaml:"elements"`
	MaxHeaderBytes int      `yaml:"max_header_bytes"`
	MaxChainLength int      `yaml:"max_chain_length"`
}

type fileFetch struct {
	Timeout         time.Duration `yaml:"timeout"`
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	MinInterval     time.Duration `yaml:"min_interval"`
}

type fileClient struct {
	ClientID                string    `yaml:"client_id"`
	TokenEndpointAuthMethod string    `yaml:"token_endpoint_auth_method"`
	SubjectDN               string    `yaml:"tls_client_auth_subject_dn"`
	SANDNS                  string    `yaml:"tls_client_auth_san_dns"`
	SANURI                  string    `yaml:"tls_client_auth_san_uri"`
	SANIP                   string    `yaml:"tls_client_auth_san_ip"`
	SANEmail                string    `yaml:"tls_client_auth_san_email"`
	TrustAnchors            []string  `yaml:"trust_anchors"`
	JWKS                    yaml.Node `yaml:"jwks"`
	JWKSFile                string    `yaml:"jwks_file"`
	JWKSURI                 string    `yaml:"jwks_uri"`
	RevocationFailure       string    `yaml:"revocation_failure"`
}

type fileClientAuth struct {
	MaxFormBytes int `yaml:"max_form_bytes"`
}

type fileRoute struct {
	PathPrefix          string   `yaml:"path_prefix"`
	PathSeparatedPrefix string   `yaml:"path_separated_prefix"`
	Clients             []string `yaml:"clients"`
	Host                string   `yaml:"host"`
	Mode                string   `yaml:"mode"`
	Scopes              []string `yaml:"scopes"`
	Binding             string   `yaml:"binding"`
	RequireClientMatch  *bool    `yaml:"require_client_match"`
}

// Defaults, in one place.
const (
	internedIntermediates     = 1024 // distinct intermediate CAs kept parsed
	DefaultCacheCertificates  = 4096 // parsed certificate material (the largest entries)
	DefaultCacheChains        = 16384
	DefaultCacheTokens        = 16384
	DefaultCacheTTL           = 5 * time.Minute
	DefaultXFCCMaxHeaderBytes = 64 << 10
	DefaultXFCCMaxChainLength = 10
	DefaultMaxFormBytes       = 64 << 10 // client_auth.max_form_bytes and http_authz.max_body_bytes
)

func (f *fileConfig) applyDefaults() {
	if f.CRLExpired == "" {
		f.CRLExpired = string(CRLExpiredDeny)
	}
	if f.CertificateSources.Peer == "" {
		f.CertificateSources.Peer = string(SourceAccept)
	}
	if f.CertificateSources.XFCC == "" {
		f.CertificateSources.XFCC = string(SourceAccept)
	}
	if f.XFCC.Elements == "" {
		f.XFCC.Elements = "single"
	}
	if f.XFCC.MaxHeaderBytes == 0 {
		f.XFCC.MaxHeaderBytes = DefaultXFCCMaxHeaderBytes
	}
	if f.XFCC.MaxChainLength == 0 {
		f.XFCC.MaxChainLength = DefaultXFCCMaxChainLength
	}
	if f.JWKSFetch.Timeout == 0 {
		f.JWKSFetch.Timeout = 5 * time.Second
	}
	if f.JWKSFetch.RefreshInterval == 0 {
		f.JWKSFetch.RefreshInterval = 5 * time.Minute
	}
	if f.JWKSFetch.MinInterval == 0 {
		f.JWKSFetch.MinInterval = 30 * time.Second
	}
	if f.Cache.Certificates == 0 {
		f.Cache.Certificates = DefaultCacheCertificates
	}
	if f.Cache.Chains == 0 {
		f.Cache.Chains = DefaultCacheChains
	}
	if f.Cache.Tokens == 0 {
		f.Cache.Tokens = DefaultCacheTokens
	}
	if f.Cache.TTL == 0 {
		f.Cache.TTL = DefaultCacheTTL
	}
	if f.Revocation.Mode == "" {
		f.Revocation.Mode = string(revocation.ModeOff)
	}
	if f.Revocation.Failure == "" {
		f.Revocation.Failure = string(revocation.FailHard)
	}
	h := &f.HTTPAuthz
	if h.CertificateFormat == "" {
		h.CertificateFormat = string(CertFormatXFCC)
	}
	if h.CertificateHeader == "" {
		h.CertificateHeader = map[string]string{
			string(CertFormatXFCC): "x-forwarded-client-cert", string(CertFormatRFC9440): "client-cert",
			string(CertFormatPEMURLEncoded): "x-ssl-client-cert",
		}[h.CertificateFormat]
	}
	if h.MaxBodyBytes == 0 {
		h.MaxBodyBytes = DefaultMaxFormBytes
	}
	if f.ClientAuth.MaxFormBytes == 0 {
		f.ClientAuth.MaxFormBytes = DefaultMaxFormBytes
	}
	for i := range f.Routes {
		if r := &f.Routes[i]; r.PathPrefix == "" && r.PathSeparatedPrefix == "" {
			r.PathPrefix = "/"
		}
	}
}

// SourceMode says how one certificate source is treated.
type SourceMode string

// Certificate source modes.
const (
	SourceAccept  SourceMode = "accept"  // used when present
	SourceRequire SourceMode = "require" // must be present, else no_certificate
	SourceIgnore  SourceMode = "ignore"  // never read
)

// CRLExpiredAction says what a CRL past its nextUpdate does.
type CRLExpiredAction string

// CRL expiry actions.
const (
	CRLExpiredDeny   CRLExpiredAction = "deny"   // certificates it covers are denied (fail closed)
	CRLExpiredIgnore CRLExpiredAction = "ignore" // the stale CRL is still applied
)

// Sources says where the client certificate may come from.
type Sources struct {
	Peer SourceMode // CheckRequest attributes.source.certificate (Envoy include_peer_certificate)
	XFCC SourceMode // x-forwarded-client-cert
}

// XFCCSettings configures the adapter's XFCC parser.
type XFCCSettings struct {
	// TrustedProxies, when set, lists the proxy identities (URI SANs of the proxy's own
	// certificate, as Envoy writes them in By, or the CheckRequest's destination principal)
	// whose XFCC certbind honours.
	TrustedProxies []string
	Elements       string // "single" (Envoy SANITIZE_SET) or "last" (APPEND_FORWARD)
	MaxHeaderBytes int
	MaxChainLength int // intermediates plus leaf
}

// CertFormat says how the HTTP authorization endpoint finds the client certificate in a header.
type CertFormat string

// Certificate header formats.
const (
	CertFormatXFCC          CertFormat = "xfcc"           // Envoy x-forwarded-client-cert
	CertFormatRFC9440       CertFormat = "rfc9440"        // Client-Cert: :<base64 DER>: (and Client-Cert-Chain)
	CertFormatPEMURLEncoded CertFormat = "pem_urlencoded" // nginx $ssl_client_escaped_cert
)

// HTTPAuthzSettings configures the HTTP authorization endpoint (Envoy http_service, nginx
// auth_request). Header names are lower-case.
type HTTPAuthzSettings struct {
	CertificateHeader    string
	CertificateFormat    CertFormat
	ChainHeader          string // CertificateHeader + "-chain": RFC 9440's Client-Cert-Chain
	ModeHeader           string
	OriginalURIHeader    string // "" means the request's own path
	OriginalMethodHeader string // "" means the request's own method
	MaxBodyBytes         int
	// AuthRequestStatuses limits denials to 401 and 403, the only ones nginx auth_request
	// passes on (it turns any other status into 500); the full status is in x-certbind-status.
	AuthRequestStatuses bool
}

// CacheSettings bounds certbind's caches: entries, and the longest an entry lives. Entries
// also never outlive what they cache (a certificate's notAfter, a CRL's nextUpdate, a token's
// exp), and a reload starts empty caches, so changed trust never serves a stale allow.
type CacheSettings struct {
	Certificates int // parsed certificate material (adapter), by request bytes
	Chains       int // verified chains, by certificate and trust anchors
	Tokens       int // verified JWTs, by token hash
	TTL          time.Duration
}

// Generation identifies this compiled configuration: caches outside the policy key on it.
func (c *Config) Generation() uint64 { return c.generation }

// FetchSettings configures jwks_uri fetching.
type FetchSettings struct {
	Timeout, RefreshInterval, MinInterval time.Duration
}

// Config is a loaded, validated, compiled configuration. It is read-only and safe for
// concurrent use; a reload builds a new one.
type Config struct {
	Sources   Sources
	XFCC      XFCCSettings
	Fetch     FetchSettings
	HTTPAuthz HTTPAuthzSettings
	Cache     CacheSettings

	generation uint64
	// Plain LRUs: every entry carries its own expiry (never later than now + cache.ttl) and is
	// checked on use. (An expiring LRU with time buckets keeps bucket maps as large as the
	// insertions of a time slice, which under a stream of new certificates far exceeds its size.)
	chainCache *lru.Cache[chainKey, time.Time]
	tokenCache *lru.Cache[[32]byte, cachedToken]
	interned   *lru.Cache[[32]byte, *x509.Certificate] // parsed intermediates, by SHA-256 of their DER

	roots         *x509.CertPool
	anchors       []*x509.Certificate
	intermediates *x509.CertPool
	crls          []*crl
	crlExpired    CRLExpiredAction
	clients       []*Client
	byID          map[string]*Client
	routes        []route
	tokens        *tokenSettings
	maxFormBytes  int
	warnings      []string
	onCache       func(cache, event string)

	revocation        *revocation.Checker // nil when revocation.mode is off
	revocationMode    revocation.Mode
	revocationFailure revocation.FailurePolicy
	files             []string // every file read, for reload watching
	digest            [32]byte // of those files' contents as read (see Digest)
}

// Warnings lists what is valid but likely not what the operator meant, each naming its key
// path (certbind validate prints them, serve logs them).
func (c *Config) Warnings() []string { return c.warnings }

// Files lists every file the configuration read (besides the config file itself).
func (c *Config) Files() []string { return c.files }

// Digest is SHA-256 over the name, a NUL and the content of each file the configuration was
// built from, exactly as it was read: with LoadConfig the configuration file, then Files in
// order. A reloader compares it with the files on disk to see whether anything changed since,
// including a write that landed while the configuration was being loaded.
func (c *Config) Digest() [32]byte { return c.digest }

// Clients returns the registered clients in configuration order.
func (c *Config) Clients() []*Client { return c.clients }

// Client looks a client up by client_id.
func (c *Config) Client(id string) (*Client, bool) {
	cl, ok := c.byID[id]
	return cl, ok
}

// CRLs returns the configured CRLs.
func (c *Config) CRLs() []*x509.RevocationList {
	out := make([]*x509.RevocationList, len(c.crls))
	for i, l := range c.crls {
		out[i] = l.list
	}
	return out
}

// TrustAnchors returns the global trust anchors.
func (c *Config) TrustAnchors() []*x509.Certificate { return c.anchors }

// LoadConfig reads and compiles a configuration file. Relative paths inside it are relative to
// its directory.
func LoadConfig(path string, opt LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	hashFile(h, path, data)
	return parseConfig(data, filepath.Dir(path), opt, h)
}

// hashFile adds one file to a configuration's digest: its name, a NUL, its content.
func hashFile(h hash.Hash, name string, data []byte) {
	io.WriteString(h, name)
	h.Write([]byte{0})
	h.Write(data)
}

// LoadOptions carries what loading needs besides the file.
type LoadOptions struct {
	// OnJWKSFetch observes jwks_uri fetches (nil error on success).
	OnJWKSFetch func(uri string, err error)
	// OnJWKSSkip observes a fetched jwks_uri set that skipped keys of a type certbind does not
	// support (jwks.Set.Skipped), so an operator learns why a kid is never found.
	OnJWKSSkip func(uri string, skipped []string)
	// OnCache observes cache events: cache "chains" or "tokens", event "hit", "miss" or "eviction".
	OnCache func(cache, event string)
	// OnRevocationFetch observes OCSP and CRL fetches (kind "ocsp" or "crl").
	OnRevocationFetch func(kind, url string, err error)
	// OnIntrospection observes calls to the introspection endpoint (nil error on an answer).
	OnIntrospection func(err error)
}

var generations atomic.Uint64

// onEvict reports evictions from the named cache to LoadOptions.OnCache.
func onEvict[K comparable, V any](b *builder, name string) func(K, V) {
	if b.opt.OnCache == nil {
		return nil
	}
	return func(K, V) { b.opt.OnCache(name, "eviction") }
}

func (c *Config) cacheEvent(cache string, hit bool) {
	if c.onCache == nil {
		return
	}
	if hit {
		c.onCache(cache, "hit")
	} else {
		c.onCache(cache, "miss")
	}
}

// ParseConfig compiles a configuration document; baseDir resolves relative file paths. All
// problems found are reported together, each naming its key path.
func ParseConfig(data []byte, baseDir string, opt LoadOptions) (*Config, error) {
	return parseConfig(data, baseDir, opt, sha256.New())
}

func parseConfig(data []byte, baseDir string, opt LoadOptions, h hash.Hash) (*Config, error) {
	var f fileConfig
	if err := decodeStrict(data, &f); err != nil {
		return nil, &ConfigError{errs: []error{err}}
	}
	f.applyDefaults()
	f.Tokens.applyDefaults()
	b := &builder{base: baseDir, opt: opt, digest: h}
	cfg := b.compile(&f)
	if len(b.errs) > 0 {
		return nil, &ConfigError{errs: b.errs}
	}
	copy(cfg.digest[:], h.Sum(nil))
	return cfg, nil
}

// ConfigError lists every problem in a configuration.
type ConfigError struct{ errs []error }

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return "invalid configuration:\n  " + strings.Join(msgs, "\n  ")
}

// Unwrap exposes the individual problems to errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.errs }

type builder struct {
	base   string
	opt    LoadOptions
	errs   []error
	files  []string
	digest hash.Hash // of every file as read (hashFile), in files order
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
	c := &Config{
		roots:         x509.NewCertPool(),
		intermediates: x509.NewCertPool(),
		byID:          map[string]*Client{},
		crlExpired:    CRLExpiredAction(f.CRLExpired),
	}
	c.anchors = b.readAnchors("trust_anchors", f.TrustAnchors, c.roots)
	for i, name := range f.Intermediates {
		for _, cert := range b.readPathCerts(fmt.Sprintf("intermediates[%d]", i), name) {
			c.intermediates.AddCert(cert)
		}
	}
	for i, name := range f.CRLFiles {
		path := fmt.Sprintf("crl_files[%d]", i)
		if data, ok := b.readFile(path, name); ok {
			l, err := parseCRL(data)
			if err != nil {
				b.errf(path, "%s: %v", name, err)
				continue
			}
			c.crls = append(c.crls, l)
		}
	}
	switch CRLExpiredAction(f.CRLExpired) {
	case CRLExpiredDeny, CRLExpiredIgnore:
	default:
		b.errf("crl_expired", "%q: want deny or ignore", f.CRLExpired)
	}
	c.Sources = Sources{Peer: b.sourceMode("certificate_sources.peer", f.CertificateSources.Peer),
		XFCC: b.sourceMode("certificate_sources.xfcc", f.CertificateSources.XFCC)}
	if c.Sources.Peer == SourceIgnore && c.Sources.XFCC == SourceIgnore {
		b.errf("certificate_sources", "peer and xfcc are both ignore: no certificate could ever be read")
	}
	c.XFCC = XFCCSettings{TrustedProxies: f.XFCC.TrustedProxies, Elements: f.XFCC.Elements, MaxHeaderBytes: f.XFCC.MaxHeaderBytes, MaxChainLength: f.XFCC.MaxChainLength}
	for i, p := range f.XFCC.TrustedProxies {
		if p == "" || strings.ContainsAny(p, ",; \"") {
			b.errf(fmt.Sprintf("xfcc.trusted_proxies[%d]", i), "%q is not a proxy identity (a URI SAN such as spiffe://example.org/envoy)", p)
		}
	}
	if f.XFCC.Elements != "single" && f.XFCC.Elements != "last" {
		b.errf("xfcc.elements", "%q: want single (Envoy SANITIZE_SET) or last (APPEND_FORWARD)", f.XFCC.Elements)
	}
	if f.XFCC.Elements == "last" && c.Sources.Peer == SourceIgnore {
		b.errf("xfcc.elements", "last needs certificate_sources.peer (accept or require): the peer certificate is what confirms the last element")
	}
	if f.XFCC.MaxHeaderBytes < 0 {
		b.errf("xfcc.max_header_bytes", "must be positive")
	}
	if f.XFCC.MaxChainLength < 0 {
		b.errf("xfcc.max_chain_length", "must be positive")
	}
	c.HTTPAuthz = HTTPAuthzSettings{
		CertificateHeader: strings.ToLower(f.HTTPAuthz.CertificateHeader), ChainHeader: strings.ToLower(f.HTTPAuthz.CertificateHeader) + "-chain",
		CertificateFormat: CertFormat(f.HTTPAuthz.CertificateFormat),
		ModeHeader:        strings.ToLower(f.HTTPAuthz.ModeHeader), OriginalURIHeader: strings.ToLower(f.HTTPAuthz.OriginalURIHeader),
		OriginalMethodHeader: strings.ToLower(f.HTTPAuthz.OriginalMethodHeader), MaxBodyBytes: f.HTTPAuthz.MaxBodyBytes,
		AuthRequestStatuses: f.HTTPAuthz.AuthRequestStatuses,
	}
	switch c.HTTPAuthz.CertificateFormat {
	case CertFormatXFCC, CertFormatRFC9440, CertFormatPEMURLEncoded:
	default:
		b.errf("http_authz.certificate_format", "%q: want xfcc, rfc9440 or pem_urlencoded", f.HTTPAuthz.CertificateFormat)
	}
	if f.HTTPAuthz.MaxBodyBytes < 0 {
		b.errf("http_authz.max_body_bytes", "must be positive")
	}
	c.revocationMode = revocation.Mode(f.Revocation.Mode)
	c.revocationFailure = revocation.FailurePolicy(f.Revocation.Failure)
	if !c.revocationMode.Valid() {
		b.errf("revocation.mode", "%q: want off, crl, ocsp or ocsp_then_crl", f.Revocation.Mode)
	}
	if !c.revocationFailure.Valid() {
		b.errf("revocation.failure", "%q: want hard or soft", f.Revocation.Failure)
	}
	if f.Revocation.Timeout < 0 || f.Revocation.MaxCacheTTL < 0 {
		b.errf("revocation", "durations must be positive")
	}
	if c.revocationMode != revocation.ModeOff && c.revocationMode.Valid() {
		c.revocation = revocation.NewChecker(revocation.Options{Timeout: f.Revocation.Timeout, MaxCacheTTL: f.Revocation.MaxCacheTTL, OnFetch: b.opt.OnRevocationFetch})
	}
	c.Cache = CacheSettings(f.Cache)
	if f.Cache.Certificates < 0 || f.Cache.Chains <= 0 || f.Cache.Tokens <= 0 || f.Cache.TTL <= 0 {
		b.errf("cache", "sizes and ttl must be positive")
	} else {
		c.generation = generations.Add(1)
		c.chainCache, _ = lru.NewWithEvict(f.Cache.Chains, onEvict[chainKey, time.Time](b, "chains"))
		c.tokenCache, _ = lru.NewWithEvict(f.Cache.Tokens, onEvict[[32]byte, cachedToken](b, "tokens"))
		c.interned, _ = lru.New[[32]byte, *x509.Certificate](internedIntermediates)
	}
	c.onCache = b.opt.OnCache
	c.Fetch = FetchSettings(f.JWKSFetch)
	if c.Fetch.Timeout < 0 || c.Fetch.RefreshInterval < 0 || c.Fetch.MinInterval < 0 {
		b.errf("jwks_fetch", "durations must be positive")
	}

	for i := range f.Clients {
		cl := b.client(fmt.Sprintf("clients[%d]", i), &f.Clients[i], c)
		if cl == nil {
			continue
		}
		if _, dup := c.byID[cl.ID]; dup {
			b.errf(fmt.Sprintf("clients[%d].client_id", i), "duplicate client_id %q", cl.ID)
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
	c.maxFormBytes = f.ClientAuth.MaxFormBytes
	if f.ClientAuth.MaxFormBytes < 0 {
		b.errf("client_auth.max_form_bytes", "must be positive")
	}
	for i := range f.Routes {
		if rt, ok := b.route(fmt.Sprintf("routes[%d]", i), &f.Routes[i], f, c); ok {
			c.routes = append(c.routes, rt)
		}
	}
	c.warnings = append(c.warnings, shadowedRoutes(f.Routes, c.routes)...)
	c.tokens = b.tokens(&f.Tokens, c)
	c.files = b.files
	return c
}

func (b *builder) sourceMode(path, v string) SourceMode {
	switch m := SourceMode(v); m {
	case SourceAccept, SourceRequire, SourceIgnore:
		return m
	}
	b.errf(path, "%q: want accept, require or ignore", v)
	return SourceIgnore
}

func (b *builder) client(path string, fc *fileClient, c *Config) *Client {
	cl := &Client{ID: fc.ClientID}
	if fc.ClientID == "" {
		b.errf(path+".client_id", "missing")
		return nil
	}
	if hasControl(fc.ClientID) {
		// certbind sends the client_id upstream in a header.
		b.errf(path+".client_id", "%q contains a control character", fc.ClientID)
		return nil
	}
	subjectFields := map[string]string{
		"tls_client_auth_subject_dn": fc.SubjectDN,
		"tls_client_auth_san_dns":    fc.SANDNS,
		"tls_client_auth_san_uri":    fc.SANURI,
		"tls_client_auth_san_ip":     fc.SANIP,
		"tls_client_auth_san_email":  fc.SANEmail,
	}
	var set []string
	for _, k := range []string{"tls_client_auth_subject_dn", "tls_client_auth_san_dns", "tls_client_auth_san_uri", "tls_client_auth_san_ip", "tls_client_auth_san_email"} {
		if subjectFields[k] != "" {
			set = append(set, k)
		}
	}
	jwksKeys := 0
	for _, present := range []bool{!fc.JWKS.IsZero(), fc.JWKSFile != "", fc.JWKSURI != ""} {
		if present {
			jwksKeys++
		}
	}
	switch fc.TokenEndpointAuthMethod {
	case string(MethodPKI):
		cl.Method = MethodPKI
		if len(set) != 1 {
			b.errf(path, "tls_client_auth needs exactly one of tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip, _san_email; found %d (%s)", len(set), strings.Join(set, ", "))
			return nil
		}
		if jwksKeys > 0 {
			b.errf(path, "jwks, jwks_file and jwks_uri belong to self_signed_tls_client_auth, not tls_client_auth")
			return nil
		}
		m, err := newMatcher(set[0], subjectFields[set[0]])
		if err != nil {
			b.errf(path+"."+set[0], "%v", err)
			return nil
		}
		cl.match = m
		cl.revocationFailure = c.revocationFailure
		if fc.RevocationFailure != "" {
			cl.revocationFailure = revocation.FailurePolicy(fc.RevocationFailure)
		}
		if !cl.revocationFailure.Valid() {
			b.errf(path+".revocation_failure", "%q: want hard or soft", fc.RevocationFailure)
			return nil
		}
		if len(fc.TrustAnchors) > 0 {
			cl.roots = x509.NewCertPool()
			b.readAnchors(path+".trust_anchors", fc.TrustAnchors, cl.roots)
		}
	case string(MethodSelfSigned):
		if fc.RevocationFailure != "" {
			b.errf(path+".revocation_failure", "self_signed_tls_client_auth certificates are pinned, not checked for revocation")
			return nil
		}
		cl.Method = MethodSelfSigned
		if len(set) > 0 {
			b.errf(path, "%s belongs to tls_client_auth; self_signed_tls_client_auth pins certificates through jwks, jwks_file or jwks_uri", strings.Join(set, ", "))
			return nil
		}
		if len(fc.TrustAnchors) > 0 {
			b.errf(path+".trust_anchors", "self_signed_tls_client_auth certificates are pinned, not chain-validated")
			return nil
		}
		if jwksKeys != 1 {
			b.errf(path, "self_signed_tls_client_auth needs exactly one of jwks, jwks_file, jwks_uri; found %d", jwksKeys)
			return nil
		}
		src := b.jwksSource(path, fc, c)
		if src == nil {
			return nil
		}
		cl.pinned = src
	case "":
		b.errf(path+".token_endpoint_auth_method", "missing: want tls_client_auth or self_signed_tls_client_auth")
		return nil
	default:
		b.errf(path+".token_endpoint_auth_method", "%q: certbind authenticates tls_client_auth and self_signed_tls_client_auth clients", fc.TokenEndpointAuthMethod)
		return nil
	}
	return cl
}

func (b *builder) jwksSource(path string, fc *fileClient, c *Config) jwks.Source {
	if fc.JWKSURI != "" {
		return b.remoteKeys(path, fc.JWKSURI, fc.JWKSURI, c)
	}
	set, where, ok := b.staticKeys(path, fc.JWKS, fc.JWKSFile)
	if !ok {
		return nil
	}
	if len(set.Certificates()) != set.Len() {
		for i, k := range set.Keys() {
			if len(k.Certificates) == 0 {
				b.errf(fmt.Sprintf("%s.keys[%d]", where, i), "x5c missing: self_signed_tls_client_auth registers certificates")
			}
		}
		return nil
	}
	return jwks.NewStatic(set)
}

// remoteKeys is the key source of a jwks_uri (label names it in fetch reports); nil when the
// URI is not http(s).
func (b *builder) remoteKeys(path, uri, label string, c *Config) jwks.Source {
	if !isHTTPURL(uri) {
		b.errf(path+".jwks_uri", "%q is not an http(s) URL", uri)
		return nil
	}
	return jwks.NewRemote(uri, b.remoteOptions(c, label))
}

// staticKeys parses a key set written in the configuration, inline (jwks) or in a file
// (jwks_file), and returns it with the key path errors about its keys should name. Unlike a
// fetched set, one the operator wrote is held to every key: a key of a type certbind skips is
// an error here, for it can only be a mistake.
func (b *builder) staticKeys(path string, inline yaml.Node, file string) (*jwks.Set, string, bool) {
	data, where, ok := b.inlineOrFile(path, inline, file)
	if !ok {
		return nil, "", false
	}
	set, err := jwks.Parse(data)
	if err != nil {
		b.errf(where, "%v", err)
		return nil, "", false
	}
	for _, s := range set.Skipped() {
		b.errf(where, "%s", s)
	}
	return set, where, len(set.Skipped()) == 0
}

func newMatcher(field, value string) (matcher, error) {
	if strings.ContainsRune(value, 0) {
		return nil, errors.New("contains a NUL byte")
	}
	switch field {
	case "tls_client_auth_subject_dn":
		n, err := dn.Parse(value)
		if err != nil {
			return nil, err
		}
		return subjectMatcher{name: n}, nil
	case "tls_client_auth_san_dns":
		if strings.TrimSpace(value) != value || strings.ContainsAny(value, " /") {
			return nil, fmt.Errorf("%q is not a DNS name", value)
		}
		return dnsMatcher{name: strings.ToLower(value)}, nil
	case "tls_client_auth_san_uri":
		u, err := url.Parse(value)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("%q is not an absolute URI", value)
		}
		return uriMatcher{uri: u}, nil
	case "tls_client_auth_san_ip":
		a, err := netip.ParseAddr(value)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address: %v", value, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("%q: IP zones are not part of certificates", value)
		}
		return ipMatcher{addr: a}, nil
	case "tls_client_auth_san_email":
		local, domain, ok := strings.Cut(value, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			return nil, fmt.Errorf("%q is not an email address", value)
		}
		return emailMatcher{local: local, domain: domain}, nil
	}
	return nil, fmt.Errorf("unknown field %s", field)
}

// remoteOptions are the jwks_fetch settings for one remote key set; fetches are reported under
// label (the jwks_uri, or the issuer for discovery).
func (b *builder) remoteOptions(c *Config, label string) jwks.RemoteOptions {
	o := jwks.RemoteOptions{Timeout: c.Fetch.Timeout, RefreshInterval: c.Fetch.RefreshInterval, MinInterval: c.Fetch.MinInterval}
	if b.opt.OnJWKSFetch != nil {
		o.OnFetch = func(err error) { b.opt.OnJWKSFetch(label, err) }
	}
	if b.opt.OnJWKSSkip != nil {
		o.OnSkip = func(skipped []string) { b.opt.OnJWKSSkip(label, skipped) }
	}
	return o
}
