package policy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/certbind/certbind/policy/admission"
	"github.com/certbind/certbind/policy/revocation"
)

// Config is a loaded, validated, compiled configuration. It is read-only and safe for
// concurrent use; a reload builds a new one.
type Config struct {
	// Settings, as compiled from the file.
	Sources   Sources
	XFCC      XFCCSettings
	Fetch     FetchSettings
	HTTPAuthz HTTPAuthzSettings
	Cache     CacheSettings

	roots             *x509.CertPool
	anchors           []*x509.Certificate
	intermediates     *x509.CertPool
	crls              []*revocation.CRL
	crlExpired        CRLExpiredAction
	clients           []*Client
	byID              map[string]*Client
	routes            []route
	tokens            *tokenSettings
	maxFormBytes      int
	revocationMode    revocation.Mode
	revocationFailure revocation.FailurePolicy

	// index finds identity's candidate clients (index.go).
	index clientIndex
	// configuredIntermediates are intermediates' certificates, for the anchored path cache.
	configuredIntermediates []configuredIntermediate

	// Where it came from.
	generation uint64
	warnings   []string
	files      []string // every file read, for reload watching
	digest     [32]byte // of those files' contents as read (see Digest)

	rt runtimeState
}

// runtimeState is what a configuration's requests share while it is in force: caches and
// hooks, new with every load, so a reload never serves what an older configuration decided.
type runtimeState struct {
	// Plain LRUs: every entry carries its own expiry (never later than now + cache.ttl) and is
	// checked on use. (An expiring LRU with time buckets keeps bucket maps as large as the
	// insertions of a time slice, which under a stream of new certificates far exceeds its size.)
	chainCache *lru.Cache[chainKey, time.Time]
	tokenCache *lru.Cache[[32]byte, cachedToken]
	// chainDoor and tokenDoor admit an entry to its cache on the second verification of the
	// same chain or token (package admission): one-time credentials never displace others.
	chainDoor, tokenDoor *admission.Doorkeeper
	interned             *lru.Cache[[32]byte, *x509.Certificate] // parsed intermediates, by SHA-256 of their DER
	revocation           *revocation.Checker                     // online revocation and its answers; nil when revocation.mode is off
	obs                  Observer

	// anchoredPaths are the verified paths above intermediates (anchoredpath.go).
	anchoredPaths *lru.Cache[anchoredKey, *anchoredPath]
}

// Generation identifies this compiled configuration: caches outside the policy key on it.
func (c *Config) Generation() uint64 { return c.generation }

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
		out[i] = l.List()
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
	// Observer is told about the configuration's fetches and cache events; nil observes
	// nothing.
	Observer Observer
	// HTTPClient, when set, makes the configuration's key set, discovery, OCSP and CRL fetches
	// (each still bounded by its configured timeout); nil gives each its own client. The
	// introspection endpoint keeps a client of its own: it carries that endpoint's TLS settings.
	HTTPClient *http.Client
	// Transport, when set, wraps the transport of every fetch: key sets, discovery,
	// introspection, OCSP and CRLs (certbind serve instruments them for tracing with it).
	Transport func(http.RoundTripper) http.RoundTripper
	// Now is the clock of key sets' refresh schedules; nil is time.Now. (Decisions take the
	// Engine's clock.)
	Now func() time.Time
}

var generations atomic.Uint64

// cacheEvent reports a hit or miss of the "chains" or "tokens" cache to the observer, and to
// the decision's CacheReport when its context carries one.
func (c *Config) cacheEvent(ctx context.Context, cache string, hit bool) {
	if r, ok := ctx.Value(cacheReportKey{}).(*CacheReport); ok {
		r.record(cache, hit)
	}
	if hit {
		c.rt.obs.ObserveCache(cache, "hit")
	} else {
		c.rt.obs.ObserveCache(cache, "miss")
	}
}

// ParseConfig compiles a configuration document; baseDir resolves relative file paths. All
// problems found are reported together, each naming its key path.
func ParseConfig(data []byte, baseDir string, opt LoadOptions) (*Config, error) {
	return parseConfig(data, baseDir, opt, sha256.New())
}

func parseConfig(data []byte, baseDir string, opt LoadOptions, h hash.Hash) (*Config, error) {
	var f fileConfig
	if !decodeStreamed(data, &f, "clients", &f.Clients) {
		f = fileConfig{}
		var err error
		if f.clientNodes, err = decodeStrict(data, &f, "clients"); err != nil {
			return nil, &ConfigError{errs: []error{err}}
		}
	}
	f.applyDefaults()
	f.Tokens.applyDefaults()
	b := &builder{base: baseDir, obs: opt.Observer, httpClient: opt.HTTPClient, transport: opt.Transport, now: opt.Now, digest: h}
	if b.obs == nil {
		b.obs = nopObserver{}
	}
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
