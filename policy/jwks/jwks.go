// Package jwks holds JSON Web Key Sets (RFC 7517) for certbind: the x5c certificates that
// self_signed_tls_client_auth clients register (RFC 8705 section 2.2) and the signing keys of
// token issuers. A Set is parsed once and read-only; a Remote keeps the last good Set of a
// jwks_uri, refreshing it on a schedule and, rate-limited, on demand.
//
// JOSE parsing is go-jose's; this package adds strictness (every key must parse, errors name
// the key's index) and the fetch policy.
package jwks

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	jose "github.com/go-jose/go-jose/v4"
)

// ErrNoKeys is returned for a set without keys.
var ErrNoKeys = errors.New("jwks: no keys")

// Set is a parsed, read-only key set.
type Set struct {
	keys   []jose.JSONWebKey
	byKID  map[string][]int
	leaves map[[32]byte]*x509.Certificate // sha256(DER) of each key's x5c[0]
}

// Parse parses a JWK Set document. Every key must be valid (go-jose checks that x5c[0] holds the
// key's public key); errors name the key (`keys[2]: ...`).
func Parse(data []byte) (*Set, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	// More() would miss a stray '}' or ']'; only EOF means nothing follows.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a JWK Set: trailing data after the JSON object")
	}
	if len(doc.Keys) == 0 {
		return nil, ErrNoKeys
	}
	s := &Set{byKID: map[string][]int{}, leaves: map[[32]byte]*x509.Certificate{}}
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if !k.Valid() {
			return nil, fmt.Errorf("keys[%d]: invalid key", i)
		}
		if k.IsPublic() == false {
			return nil, fmt.Errorf("keys[%d]: holds private key material; publish only public keys", i)
		}
		s.byKID[k.KeyID] = append(s.byKID[k.KeyID], len(s.keys))
		s.keys = append(s.keys, k)
		if len(k.Certificates) > 0 {
			s.leaves[sha256.Sum256(k.Certificates[0].Raw)] = k.Certificates[0]
		}
	}
	return s, nil
}

// Keys returns the keys in document order. Callers must not modify them.
func (s *Set) Keys() []jose.JSONWebKey { return s.keys }

// Len is the number of keys.
func (s *Set) Len() int { return len(s.keys) }

// ByKID returns the keys with the given key ID.
func (s *Set) ByKID(kid string) []jose.JSONWebKey {
	idx := s.byKID[kid]
	out := make([]jose.JSONWebKey, len(idx))
	for i, j := range idx {
		out[i] = s.keys[j]
	}
	return out
}

// Certificates returns each key's first x5c certificate (the registered certificate for
// self_signed_tls_client_auth), in document order, skipping keys without x5c.
func (s *Set) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, k := range s.keys {
		if len(k.Certificates) > 0 {
			out = append(out, k.Certificates[0])
		}
	}
	return out
}

// Pinned reports whether a key's first x5c certificate is byte-for-byte the certificate whose
// SHA-256 is thumbprint, and returns it.
func (s *Set) Pinned(thumbprint [32]byte) (*x509.Certificate, bool) {
	c, ok := s.leaves[thumbprint]
	return c, ok
}
