package policy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy/dpop"
	"github.com/certbind/certbind/policy/token"
)

// fileDPoP is tokens.dpop: how DPoP proofs (RFC 9449) are checked. Every field has a default,
// so DPoP-bound tokens work without the section.
type fileDPoP struct {
	Algorithms    []string      `yaml:"algorithms"`
	Window        time.Duration `yaml:"window"` // how old a proof may be (its iat)
	Leeway        time.Duration `yaml:"leeway"`
	MaxProofBytes int           `yaml:"max_proof_bytes"`
	Replay        fileReplay    `yaml:"replay"`
	Nonce         *fileNonce    `yaml:"nonce"`
}

// fileReplay is where the jti of every accepted proof is remembered.
type fileReplay struct {
	Store      string     `yaml:"store"`       // memory (default) or redis
	MemorySize int        `yaml:"memory_size"` // proofs remembered in process
	Redis      *fileRedis `yaml:"redis"`
	// OnError is what a proof gets when Redis cannot answer: deny (default: 503
	// dpop_replay_unavailable) or memory (this replica's own memory decides, so a proof could
	// be accepted once by each replica while Redis is down).
	OnError string `yaml:"on_error"`
}

// fileRedis is the shared replay store.
type fileRedis struct {
	Address      string        `yaml:"address"` // host:port, or redis:// or rediss:// URL without a password
	Username     string        `yaml:"username"`
	PasswordFile string        `yaml:"password_file"`
	DB           int           `yaml:"db"`
	KeyPrefix    string        `yaml:"key_prefix"`
	Timeout      time.Duration `yaml:"timeout"`
	TLSCA        string        `yaml:"tls_ca"`
	TLSCert      string        `yaml:"tls_cert"`
	TLSKey       string        `yaml:"tls_key"`
}

// fileNonce turns server nonces on (RFC 9449 section 9).
type fileNonce struct {
	// KeyFile holds the key nonces are made with: at least 32 bytes, the whole file. Replicas
	// behind one proxy need the same key. Without it, each process makes its own.
	KeyFile  string        `yaml:"key_file"`
	Lifetime time.Duration `yaml:"lifetime"`
}

// DPoP defaults.
const (
	DefaultDPoPMemorySize = 1_000_000 // about 40 MB when full: two windows of 7,500 proofs a second
	DefaultNonceLifetime  = 5 * time.Minute
)

// dpopSettings is the compiled tokens.dpop.
type dpopSettings struct {
	verifier *dpop.Verifier
	nonces   *dpop.Nonces // nil: nonces off
	algs     string       // the challenge's algs parameter
	// memory is the in-process replay store; a reload hands the one in force on (Engine.Swap),
	// so a proof seen before the reload is still refused after it.
	memory *memoryReplay
	// redis is the shared replay store (nil with store: memory); a reload that keeps its
	// settings keeps its connections.
	redis *redisReplay
}

// redisReplay is a dpop.Redis that a newer configuration with the same settings takes over.
type redisReplay struct {
	settings [32]byte       // what it was made from, the password included
	roots    *x509.CertPool // its private CA, nil for the system's
	r        atomic.Pointer[dpop.Redis]
	fallback *memoryReplay // on_error: memory; nil denies
	obs      Observer
}

func (r *redisReplay) Add(ctx context.Context, key string, now, until time.Time) (bool, error) {
	added, err := r.r.Load().Add(ctx, key, now, until)
	r.obs.ObserveFetch("dpop_replay", "redis", err)
	if err != nil && r.fallback != nil {
		return r.fallback.Add(ctx, key, now, until)
	}
	return added, err
}

// redisRetired is how long a replaced Redis client stays open for the requests still using it.
const redisRetired = time.Minute

// memoryReplay is a dpop.Memory that a newer configuration can take over.
type memoryReplay struct {
	size int
	m    atomic.Pointer[dpop.Memory]
}

func (r *memoryReplay) Add(ctx context.Context, key string, now, until time.Time) (bool, error) {
	return r.m.Load().Add(ctx, key, now, until)
}

// adoptReplay keeps the replay memory of the configuration in force when the new one
// remembers as many proofs, and its Redis client when the settings are the same (a replaced
// client is closed once the requests using it are done).
func adoptReplay(old, c *Config) {
	var o, n *dpopSettings
	if old != nil && old.tokens != nil {
		o = old.tokens.dpop
	}
	if c != nil && c.tokens != nil {
		n = c.tokens.dpop
	}
	if o == nil || o == n {
		return
	}
	if n != nil && o.memory != nil && n.memory != nil && o.memory.size == n.memory.size {
		n.memory.m.Store(o.memory.m.Load())
	}
	if o.redis == nil {
		return
	}
	if n != nil && n.redis != nil && n.redis.settings == o.redis.settings && n.redis.roots.Equal(o.redis.roots) {
		unused := n.redis.r.Swap(o.redis.r.Load())
		unused.Close()
		return
	}
	retired := o.redis.r.Load()
	time.AfterFunc(redisRetired, func() { retired.Close() })
}

// processNonceKey is the nonce key of a configuration without nonce.key_file: random, once
// per process, so a reload keeps the nonces already issued good.
var processNonceKey = sync.OnceValue(func() []byte {
	k := make([]byte, dpop.MinNonceKey)
	rand.Read(k)
	return k
})

func (b *builder) dpop(f *fileDPoP) *dpopSettings {
	const path = "tokens.dpop"
	cfg := dpop.Config{Window: f.Window, Leeway: f.Leeway, MaxBytes: f.MaxProofBytes}
	for j, a := range f.Algorithms {
		if !token.AsymmetricAlgorithm(a) {
			b.errf(fmt.Sprintf("%s.algorithms[%d]", path, j), "%q: allowed are RS256/384/512, PS256/384/512, ES256/384/512, EdDSA (never none or HMAC)", a)
			continue
		}
		cfg.Algorithms = append(cfg.Algorithms, jose.SignatureAlgorithm(a))
	}
	if f.Window < 0 || (f.Window > 0 && f.Window < time.Second) || f.Window > time.Hour {
		b.errf(path+".window", "%s: want between 1s and 1h", f.Window)
	}
	if f.Leeway < 0 || f.Leeway > 5*time.Minute {
		b.errf(path+".leeway", "%s: want between 0 and 5m", f.Leeway)
	}
	if f.MaxProofBytes < 0 || f.MaxProofBytes > 64<<10 {
		b.errf(path+".max_proof_bytes", "%d: want between 1 and 65536", f.MaxProofBytes)
	}
	s := &dpopSettings{}
	size := f.Replay.MemorySize
	if size == 0 {
		size = DefaultDPoPMemorySize
	}
	if size < 0 {
		b.errf(path+".replay.memory_size", "must be positive")
		size = 1
	}
	memory := &memoryReplay{size: size}
	memory.m.Store(dpop.NewMemory(size))
	switch f.Replay.Store {
	case "", "memory":
		if f.Replay.Redis != nil || f.Replay.OnError != "" {
			b.errf(path+".replay", "redis and on_error apply to store: redis")
			return nil
		}
		s.memory = memory
		cfg.Replay = memory
	case "redis":
		r := b.redisReplay(path+".replay", &f.Replay)
		if r == nil {
			return nil
		}
		switch f.Replay.OnError {
		case "", "deny":
		case "memory":
			s.memory, r.fallback = memory, memory
		default:
			b.errf(path+".replay.on_error", "%q: want deny or memory", f.Replay.OnError)
			return nil
		}
		s.redis = r
		cfg.Replay = r
	default:
		b.errf(path+".replay.store", "%q: want memory or redis", f.Replay.Store)
		return nil
	}
	if n := f.Nonce; n != nil {
		key := processNonceKey()
		if n.KeyFile != "" {
			data, ok := b.readFile(path+".nonce.key_file", n.KeyFile)
			if !ok {
				return nil
			}
			key = data
		}
		if n.Lifetime == 0 {
			n.Lifetime = DefaultNonceLifetime
		}
		nonces, err := dpop.NewNonces(key, n.Lifetime)
		if err != nil {
			b.errf(path+".nonce", "%v", strings.TrimPrefix(err.Error(), "dpop: "))
			return nil
		}
		s.nonces, cfg.Nonces = nonces, nonces
	}
	v, err := dpop.NewVerifier(cfg)
	if err != nil {
		b.errf(path, "%v", strings.TrimPrefix(err.Error(), "dpop: "))
		return nil
	}
	s.verifier = v
	algs := make([]string, 0, len(v.Algorithms()))
	for _, a := range v.Algorithms() {
		algs = append(algs, string(a))
	}
	s.algs = strings.Join(algs, " ")
	return s
}

// redisReplay builds the Redis store of replay.redis; the password file is read like every
// other file of the configuration (a change reloads it), and never quoted.
func (b *builder) redisReplay(path string, f *fileReplay) *redisReplay {
	r := f.Redis
	if r == nil || r.Address == "" {
		b.errf(path+".redis.address", "required with store: redis")
		return nil
	}
	c := dpop.RedisConfig{Address: r.Address, Username: r.Username, DB: r.DB, Prefix: r.KeyPrefix, Timeout: r.Timeout}
	if r.Timeout < 0 || r.Timeout > 10*time.Second {
		b.errf(path+".redis.timeout", "%s: want between 1ms and 10s", r.Timeout)
		return nil
	}
	if r.PasswordFile != "" {
		data, ok := b.readFile(path+".redis.password_file", r.PasswordFile)
		if !ok {
			return nil
		}
		c.Password = strings.TrimRight(string(data), "\r\n")
	}
	tc, ok := b.tlsConfig(path+".redis", "tls_", fileTLS{CA: r.TLSCA, Cert: r.TLSCert, Key: r.TLSKey})
	if !ok {
		return nil
	}
	c.TLS = tc
	store, err := dpop.NewRedis(c)
	if err != nil {
		b.errf(path+".redis", "%v", strings.TrimPrefix(err.Error(), "dpop: redis: "))
		return nil
	}
	// The settings as compared on reload: every field, the password, and the TLS material as
	// read (the client certificate's DER here, the CA pool compared with CertPool.Equal).
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %d %q %s\x00", r.Address, r.Username, c.Password, r.DB, r.KeyPrefix, r.Timeout)
	out := &redisReplay{obs: b.obs}
	if tc != nil {
		for _, cert := range tc.Certificates {
			for _, der := range cert.Certificate {
				h.Write(der)
				h.Write([]byte{0})
			}
		}
		out.roots = tc.RootCAs
	}
	copy(out.settings[:], h.Sum(nil))
	out.r.Store(store)
	return out
}
