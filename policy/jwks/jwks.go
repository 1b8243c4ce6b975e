// Package jwks holds JSON Web Key Sets (RFC 7517) for certbind: the x5c certificates that
// self_signed_tls_client_auth clients register (RFC 8705 section 2.2) and the signing keys of
// token issuers. A Set is parsed once and read-only; a Remote keeps the last good Set of a
// jwks_uri, refreshing it on a schedule and, rate-limited, on demand.
//
// JOSE parsing is go-jose's; this package adds strictness (every key of a type certbind
// understands must parse; errors name the key's index) and the fetch policy. Keys of a type or
// curve certbind does not understand are skipped, as RFC 7517 section 5 says, so an issuer that
// adds such a key to its set does not lock out every token signed with the keys beside it.
package jwks

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// ErrNoKeys is returned for a set without keys.
var ErrNoKeys = errors.New("jwks: no keys")

// Set is a parsed, read-only key set.
type Set struct {
	keys    []jose.JSONWebKey
	byKID   map[string][]int
	leaves  map[[32]byte]*x509.Certificate // sha256(DER) of each key's x5c[0]
	skipped []string                       // why each skipped key was skipped, by index
}

// supportedCurves are the "crv" values of "EC" keys go-jose parses.
var supportedCurves = map[string]bool{"P-256": true, "P-384": true, "P-521": true}

// Parse parses a JWK Set document. A key whose "kty" (or, for "EC", "crv") certbind does not
// understand is skipped and named by Skipped; every other key must be valid (go-jose checks
// that x5c[0] holds the key's public key) and public, and errors name the key (`keys[2]: ...`).
// A set left with no usable key is ErrNoKeys.
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
		var head struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
		}
		// Read with go-jose's own (case-sensitive) decoder, so both reads see the same members.
		// A document that is not an object fails below, in go-jose, with its own message.
		if josejson.Unmarshal(raw, &head) == nil && head.Kty == "EC" && !supportedCurves[head.Crv] {
			s.skipped = append(s.skipped, fmt.Sprintf("keys[%d]: EC curve %q not supported", i, head.Crv))
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				s.skipped = append(s.skipped, fmt.Sprintf("keys[%d]: key type %q (crv %q) not supported", i, head.Kty, head.Crv))
				continue
			}
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
	if len(s.keys) == 0 {
		return nil, fmt.Errorf("%w certbind can use (%s)", ErrNoKeys, strings.Join(s.skipped, "; "))
	}
	return s, nil
}

// Skipped describes the keys Parse skipped, e.g. `keys[1]: key type "XYZ" (crv "") not
// supported`, for a log line or a validation warning.
func (s *Set) Skipped() []string { return s.skipped }

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
