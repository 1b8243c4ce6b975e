package extauthz

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/certbind/certbind/policy"
)

// certResult is the outcome of reading a request's certificate material.
type certResult struct {
	p     *policy.Presented
	err   error     // a deny (policy.Deny), nil when the material was read
	until time.Time // cache.ttl after it was read
}

// certCache remembers certResults by the SHA-256 of the exact bytes they were read from, so a
// client that comes back (as real clients do, with the same certificate) costs a hash and a
// lookup instead of percent-decoding, PEM and X.509 parsing. It belongs to one configuration
// generation: settings such as xfcc.trusted_proxies change what the same bytes mean.
type certCache struct {
	gen uint64
	lru *lru.Cache[[32]byte, certResult]
}

// certCaches hands out the cache of the configuration in force, replacing it on reload.
type certCaches struct {
	mu      sync.Mutex // serializes replacing cur
	cur     atomic.Pointer[certCache]
	onEvent func(cache, event string)
}

func (cc *certCaches) forConfig(cfg *policy.Config) *certCache {
	if c := cc.cur.Load(); c != nil && c.gen == cfg.Generation() {
		return c
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c := cc.cur.Load(); c != nil && c.gen == cfg.Generation() {
		return c
	}
	var onEvict func([32]byte, certResult)
	if cc.onEvent != nil {
		onEvict = func([32]byte, certResult) { cc.onEvent("certificates", "eviction") }
	}
	l, _ := lru.NewWithEvict(cfg.Cache.Certificates, onEvict) // size > 0: checked by lookup
	c := &certCache{gen: cfg.Generation(), lru: l}
	cc.cur.Store(c)
	return c
}

// fill sets in's certificate, or the reason it has none usable, from read, through the cache.
// parts are the exact request material read uses, including whether each header was present.
func (cc *certCaches) fill(in *policy.Input, cfg *policy.Config, read func() (*policy.Presented, error), parts ...string) {
	res := cc.lookup(cfg, func() certResult {
		p, err := read()
		return certResult{p: p, err: err}
	}, parts...)
	in.CertificateErr = res.err
	in.Certificate = res.p
}

// lookup returns the cached result for the given material or computes and stores it. parts are
// hashed with their lengths, so no two different inputs share a key.
func (cc *certCaches) lookup(cfg *policy.Config, compute func() certResult, parts ...string) certResult {
	if cfg.Cache.Certificates <= 0 {
		return compute()
	}
	c := cc.forConfig(cfg)
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
	if r, ok := c.lru.Get(key); ok && now.Before(r.until) {
		cc.event("hit")
		return r
	}
	cc.event("miss")
	r := compute()
	r.until = now.Add(cfg.Cache.TTL)
	c.lru.Add(key, r)
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

func (cc *certCaches) event(e string) {
	if cc.onEvent != nil {
		cc.onEvent("certificates", e)
	}
}
