package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// MinNonceKey is the shortest key Nonces accepts: HMAC-SHA256's block of security.
const MinNonceKey = 32

// nonceLabel separates certbind's nonce MACs from any other use of the same key.
const nonceLabel = "certbind dpop-nonce v1\x00"

// Nonces issues and checks server-provided nonces (RFC 9449 section 9). They are stateless: a
// nonce is the second it was issued and an HMAC-SHA256 of that second under the key, so it
// needs no store, and replicas that share the key accept each other's nonces. A nonce is good
// for the lifetime after it was issued. Within one second every request gets the same nonce:
// a nonce limits how long ago a proof can have been made, and the jti check (not the nonce)
// refuses a replayed proof.
type Nonces struct {
	key      []byte
	lifetime time.Duration
	last     atomic.Pointer[issued]
}

type issued struct {
	second int64
	nonce  string
}

// NewNonces makes a nonce source with key (at least MinNonceKey bytes, secret, and the same on
// every replica that should accept the others' nonces) and a lifetime (at least a second).
func NewNonces(key []byte, lifetime time.Duration) (*Nonces, error) {
	if len(key) < MinNonceKey {
		return nil, fmt.Errorf("dpop: nonce key of %d bytes, want at least %d", len(key), MinNonceKey)
	}
	if lifetime < time.Second {
		return nil, errors.New("dpop: nonce lifetime under a second")
	}
	return &Nonces{key: append([]byte(nil), key...), lifetime: lifetime}, nil
}

// Lifetime is how long a nonce is accepted after it was issued.
func (n *Nonces) Lifetime() time.Duration { return n.lifetime }

// Issue returns the nonce for now: base64url of the second (8 bytes, big-endian) and the
// first 16 bytes of its MAC, 32 characters of the NQCHAR set RFC 9449 section 8.1 requires.
func (n *Nonces) Issue(now time.Time) string {
	sec := now.Unix()
	if l := n.last.Load(); l != nil && l.second == sec {
		return l.nonce
	}
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(sec))
	copy(b[8:], n.mac(b[:8]))
	s := base64.RawURLEncoding.EncodeToString(b[:])
	n.last.Store(&issued{second: sec, nonce: s})
	return s
}

func (n *Nonces) mac(second []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(nonceLabel))
	m.Write(second)
	return m.Sum(nil)[:16]
}

// Check reports whether nonce is one of ours, issued within the lifetime before now (and no
// more than a second ahead of it, for clocks that differ between replicas). Its errors never
// quote the nonce.
func (n *Nonces) Check(nonce string, now time.Time) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return errors.New("not a nonce certbind issued")
	}
	if !hmac.Equal(b[8:], n.mac(b[:8])) {
		return errors.New("not a nonce certbind issued (or the nonce key changed)")
	}
	at := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	switch {
	case at.After(now.Add(time.Second)):
		return fmt.Errorf("nonce issued %s, in the future", at.UTC().Format(time.RFC3339))
	case now.Sub(at) > n.lifetime:
		return fmt.Errorf("nonce issued %s, older than %s", at.UTC().Format(time.RFC3339), n.lifetime)
	}
	return nil
}
