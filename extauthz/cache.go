package extauthz

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/admission"
)

// certResult is the outcome of reading a request's certificate material.
type certResult struct {
	p     *policy.Presented
	err   error     // a deny (policy.Deny), nil when the material was read
	until time.Time // cache.ttl after it was read
}

// adapterConfig is the adapter's state for one configuration generation: its compiled
// settings, and the certificate cache, which remembers certResults by the SHA-256 of the exact
// bytes they were read from, so a client that comes back (as real clients do, with the same
// certificate) costs a hash and a lookup instead of percent-decoding, PEM and X.509 parsing. A
// result is cached the second time its material is read (package admission): material seen
// once never displaces a returning client's.
// Both belong to one generation: settings such as xfcc.trusted_proxies change what the same
// bytes mean.
type adapterConfig struct {
	gen   uint64
	set   *settings
	certs *lru.Cache[[32]byte, certResult] // nil when cache.certificates is 0
	door  *admission.Doorkeeper
	ttl   time.Duration
}

// adapterConfigs hands out the adapterConfig of the configuration in force, replacing it on
// reload.
type adapterConfigs struct {
	mu      sync.Mutex // serializes replacing cur
	cur     atomic.Pointer[adapterConfig]
	onEvent func(cache, event string)
}

func (ac *adapterConfigs) forConfig(cfg *policy.Config) *adapterConfig {
	if c := ac.cur.Load(); c != nil && c.gen == cfg.Generation() {
		return c
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if c := ac.cur.Load(); c != nil && c.gen == cfg.Generation() {
		return c
	}
	c := &adapterConfig{gen: cfg.Generation(), set: compileSettings(cfg), ttl: cfg.Cache.TTL}
	if cfg.Cache.Certificates > 0 {
		var onEvict func([32]byte, certResult)
		if ac.onEvent != nil {
			onEvict = func([32]byte, certResult) { ac.onEvent("certificates", "eviction") }
		}
		c.certs, _ = lru.NewWithEvict(cfg.Cache.Certificates, onEvict)
		c.door = admission.New(cfg.Cache.Certificates)
	}
	ac.cur.Store(c)
	return c
}

// fill sets in's certificate, or the reason it has none usable, from read, through the cache,
// and says whether it came from the cache. parts are the exact request material read uses,
// including whether each header was present.
func (ac *adapterConfigs) fill(in *policy.Input, c *adapterConfig, read func() (*policy.Presented, error), parts ...string) bool {
	computed := false
	res := ac.lookup(c, func() certResult {
		computed = true
		p, err := read()
		return certResult{p: p, err: err}
	}, parts...)
	in.CertificateErr = res.err
	in.Certificate = res.p
	return !computed && c.certs != nil
}

// lookup returns the cached result for the given material or computes and stores it. parts are
// hashed with their lengths, so no two different inputs share a key.
func (ac *adapterConfigs) lookup(c *adapterConfig, compute func() certResult, parts ...string) certResult {
	if c.certs == nil {
		return compute()
	}
	bp := keyBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, p := range parts {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(len(p)))
		buf = append(buf, p...)
	}
	key := sha256.Sum256(buf)
	*bp = buf
	keyBufs.Put(bp)
	now := time.Now()
	if r, ok := c.certs.Get(key); ok && now.Before(r.until) {
		ac.event("hit")
		return r
	}
	ac.event("miss")
	r := compute()
	if c.door.Admit(key) {
		r.until = now.Add(c.ttl)
		c.certs.Add(key, r)
	}
	return r
}

// presence is a cache key part for whether a header was sent at all: an empty header and an
// absent one are different material (an empty XFCC is malformed, a missing one is no
// certificate).
func presence(ok bool) string {
	if ok {
		return "1"
	}
	return "0"
}

// keyBufs holds the buffers cache keys are hashed from: the material is a few kilobytes of
// PEM per request, worth not allocating each time.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func (ac *adapterConfigs) event(e string) {
	if ac.onEvent != nil {
		ac.onEvent("certificates", e)
	}
}
