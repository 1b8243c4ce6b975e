package policy

import (
	"context"
	"crypto/rand"
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
	Store      string `yaml:"store"`       // memory (default) or redis
	MemorySize int    `yaml:"memory_size"` // proofs remembered in process
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
	DefaultDPoPMemorySize = 100_000
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
}

// memoryReplay is a dpop.Memory that a newer configuration can take over.
type memoryReplay struct {
	size int
	m    atomic.Pointer[dpop.Memory]
}

func (r *memoryReplay) Add(ctx context.Context, key string, now, until time.Time) (bool, error) {
	return r.m.Load().Add(ctx, key, now, until)
}

// adoptReplay keeps the replay memory of the configuration in force when the new one
// remembers as many proofs.
func adoptReplay(old, c *Config) {
	if old == nil || c == nil || old.tokens == nil || c.tokens == nil || old.tokens.dpop == nil || c.tokens.dpop == nil {
		return
	}
	o, n := old.tokens.dpop.memory, c.tokens.dpop.memory
	if o != nil && n != nil && o.size == n.size && o != n {
		n.m.Store(o.m.Load())
	}
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
	if f.Window < 0 || f.Window > time.Hour {
		b.errf(path+".window", "%s: want between 1s and 1h", f.Window)
	}
	if f.Leeway < 0 || f.Leeway > 5*time.Minute {
		b.errf(path+".leeway", "%s: want between 0 and 5m", f.Leeway)
	}
	if f.MaxProofBytes < 0 || f.MaxProofBytes > 64<<10 {
		b.errf(path+".max_proof_bytes", "%d: want between 1 and 65536", f.MaxProofBytes)
	}
	s := &dpopSettings{}
	switch f.Replay.Store {
	case "", "memory":
		size := f.Replay.MemorySize
		if size == 0 {
			size = DefaultDPoPMemorySize
		}
		if size < 0 {
			b.errf(path+".replay.memory_size", "must be positive")
			size = 1
		}
		s.memory = &memoryReplay{size: size}
		s.memory.m.Store(dpop.NewMemory(size))
		cfg.Replay = s.memory
	default:
		b.errf(path+".replay.store", "%q: want memory", f.Replay.Store)
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
