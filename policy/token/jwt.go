// Package token verifies OAuth access tokens for certbind's bound_token mode: JWT access
// tokens (RFC 9068) against their issuer's keys, and opaque tokens by RFC 7662 introspection.
// It answers "is this token valid, and what does it say"; whether the token is bound to the
// presented certificate (RFC 8705 section 3) is the policy's decision.
//
// Every failure is an *Error with a Kind, so the policy can deny with a precise reason.
package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy/jwks"
)

// Kind classifies why a token was rejected.
type Kind string

// Kinds of token failure.
const (
	KindMalformed   Kind = "malformed"   // not a well-formed token, or claims of the wrong type
	KindAlgorithm   Kind = "algorithm"   // alg not allowed for the issuer (none and HMAC never are)
	KindType        Kind = "type"        // typ header not accepted (RFC 9068 at+jwt)
	KindIssuer      Kind = "issuer"      // iss names no configured issuer
	KindUnknownKey  Kind = "unknown_key" // no key with the token's kid, even after a refresh
	KindSignature   Kind = "signature"   // signature does not verify
	KindExpired     Kind = "expired"     // past exp (plus leeway), or exp missing
	KindNotYetValid Kind = "not_yet_valid"
	KindAudience    Kind = "audience"    // aud holds none of the configured audiences
	KindInactive    Kind = "inactive"    // introspection says active: false
	KindRejected    Kind = "rejected"    // the introspection endpoint refused the token (an RFC 7662 error answer)
	KindUnavailable Kind = "unavailable" // keys or introspection endpoint unavailable: cannot decide
)

// Error is a token verification failure.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return "token: " + string(e.Kind) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the Kind of a token error ("" when err is not one).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// ErrNotJWT is returned by (*Verifier).Verify for a token that is not a compact JWS: it may be
// an opaque token for introspection.
var ErrNotJWT = errors.New("token: not a JWT")

// Issuer is one trusted JWT issuer.
type Issuer struct {
	Issuer     string
	Keys       jwks.Source
	Audiences  []string
	Algorithms []jose.SignatureAlgorithm
	// Types lists accepted typ header values, compared case-insensitively with an optional
	// "application/" prefix (RFC 7515 section 4.1.9); empty accepts a token without typ only if
	// AllowMissingType.
	Types            []string
	AllowMissingType bool
	Leeway           time.Duration
}

// refresher is a key source that can refetch on demand (a kid it does not know).
type refresher interface {
	Refresh(ctx context.Context) (*jwks.Set, error)
}

// Verifier verifies JWT access tokens from a set of issuers.
type Verifier struct {
	issuers  map[string]*Issuer
	maxBytes int
}

// DefaultMaxTokenBytes bounds the size of a token certbind will look at.
const DefaultMaxTokenBytes = 16 << 10

// NewVerifier makes a Verifier. maxBytes <= 0 means DefaultMaxTokenBytes.
func NewVerifier(issuers []*Issuer, maxBytes int) *Verifier {
	v := &Verifier{issuers: map[string]*Issuer{}, maxBytes: maxBytes}
	for _, is := range issuers {
		v.issuers[is.Issuer] = is
	}
	if v.maxBytes <= 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	return v
}

// LooksLikeJWT reports whether raw has the shape of a compact JWS (three base64url parts).
func LooksLikeJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

// segments splits a compact JWS into its three base64url parts; ok is false unless there are
// exactly three.
func segments(raw string) (header, payload, signature string, ok bool) {
	header, rest, ok1 := strings.Cut(raw, ".")
	payload, signature, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(signature, ".") {
		return "", "", "", false
	}
	return header, payload, signature, true
}

// peek parses a JWT's payload without verifying it. Failures wrap ErrNotJWT too: a string
// that only looks like a JWT may be an opaque token for introspection.
func peek(raw string) (*Claims, error) {
	c, _, err := peekPayload(raw)
	return c, err
}

// peekPayload is peek, also returning the decoded payload.
func peekPayload(raw string) (*Claims, []byte, error) {
	_, seg, _, ok := segments(raw)
	if !ok {
		return nil, nil, ErrNotJWT
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, nil, &Error{Kind: KindMalformed, Err: fmt.Errorf("%w: payload is not base64url: %v", ErrNotJWT, err)}
	}
	m, err := parseObject(payload)
	if err != nil {
		return nil, nil, &Error{Kind: KindMalformed, Err: fmt.Errorf("%w: payload: %v", ErrNotJWT, err)}
	}
	c, err := claimsFrom(m)
	if err != nil {
		return nil, nil, fail(KindMalformed, "%w", err)
	}
	return c, payload, nil
}

// Verify checks a JWT access token: size, shape, strict JSON, issuer, algorithm allow-list,
// typ, signature by a key of the issuer, exp/nbf with leeway at now, and audience. The payload
// is parsed once, before the signature check (to find the issuer); its claims are used only
// once the signature over those very bytes holds.
func (v *Verifier) Verify(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	if len(raw) > v.maxBytes {
		return nil, fail(KindMalformed, "token larger than %d bytes", v.maxBytes)
	}
	hdrSeg, _, _, ok := segments(raw)
	if !ok {
		return nil, ErrNotJWT
	}
	c, parsed, err := peekPayload(raw)
	if err != nil {
		return nil, err
	}
	iss := c.Issuer
	is, ok := v.issuers[iss]
	if !ok {
		return nil, fail(KindIssuer, "issuer %q is not configured", iss)
	}
	hdrJSON, err := base64.RawURLEncoding.Strict().DecodeString(hdrSeg)
	if err != nil {
		return nil, fail(KindMalformed, "header is not base64url: %v", err)
	}
	hdr, err := parseObject(hdrJSON)
	if err != nil {
		return nil, fail(KindMalformed, "header: %v", err)
	}
	if _, ok := hdr["crit"]; ok {
		// RFC 7515 section 4.1.11: certbind understands no extension, so any crit is refused.
		return nil, fail(KindMalformed, "header crit %s: no critical extension is supported", hdr["crit"])
	}
	algName, ok := jsonString(hdr["alg"])
	if !ok {
		return nil, fail(KindMalformed, "header alg missing or not a string")
	}
	// The allow-list comes first: "none" and HMAC (which a confused verifier would key with the
	// issuer's public key) never reach signature code.
	alg := jose.SignatureAlgorithm(algName)
	if !slices.Contains(is.Algorithms, alg) {
		return nil, fail(KindAlgorithm, "alg %q is not allowed for issuer %q", algName, iss)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return nil, fail(KindMalformed, "%v", err)
	}
	h := jws.Signatures[0].Header
	if err := is.checkType(h.ExtraHeaders[jose.HeaderType]); err != nil {
		return nil, err
	}
	payload, set, err := is.verifySignature(ctx, jws, h.KeyID, alg)
	if err != nil {
		return nil, err
	}
	c.keys = set
	if !bytes.Equal(payload, parsed) {
		return nil, fail(KindMalformed, "signed payload differs from the parsed one") // unreachable for compact JWS
	}
	if err := checkTimes(c, now, is.Leeway, true); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(is.Audiences, a) }) {
		return nil, fail(KindAudience, "aud %q holds none of %q", c.Audience, is.Audiences)
	}
	return c, nil
}

// asymmetric lists the algorithms an issuer may allow: "none" and HMAC are not among them.
var asymmetric = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// AsymmetricAlgorithm reports whether alg may be configured for an issuer.
func AsymmetricAlgorithm(alg string) bool {
	return slices.Contains(asymmetric, jose.SignatureAlgorithm(alg))
}

func (is *Issuer) checkType(v any) error {
	if v == nil {
		if is.AllowMissingType {
			return nil
		}
		return fail(KindType, "typ header missing, want %q", is.Types)
	}
	typ, ok := v.(string)
	if !ok {
		return fail(KindType, "typ header is not a string")
	}
	norm := strings.TrimPrefix(strings.ToLower(typ), "application/")
	for _, want := range is.Types {
		if norm == strings.TrimPrefix(strings.ToLower(want), "application/") {
			return nil
		}
	}
	return fail(KindType, "typ %q not accepted, want %q", typ, is.Types)
}

// verifySignature verifies jws with a key of the issuer and returns the payload and the key set
// the key came from.
func (is *Issuer) verifySignature(ctx context.Context, jws *jose.JSONWebSignature, kid string, alg jose.SignatureAlgorithm) ([]byte, *jwks.Set, error) {
	set, err := is.Keys.Current(ctx)
	if err != nil {
		return nil, nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("keys of %q: %w", is.Issuer, err)}
	}
	keys := candidates(set, kid, alg)
	if len(keys) == 0 && kid != "" {
		if r, ok := is.Keys.(refresher); ok {
			if set, err = r.Refresh(ctx); err == nil {
				keys = candidates(set, kid, alg)
			}
		}
	}
	if len(keys) == 0 {
		return nil, nil, fail(KindUnknownKey, "issuer %q has no %s key with kid %q", is.Issuer, alg, kid)
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, set, nil
		}
	}
	return nil, nil, fail(KindSignature, "signature does not verify with the issuer's key %q", kid)
}

// candidates are the public signing keys that may have made a signature with alg: matching kid
// (any key when the token names none), a declared alg equal to alg, use "sig" or unset. Private
// and symmetric keys are never candidates.
func candidates(set *jwks.Set, kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	pool := set.Keys()
	if kid != "" {
		pool = set.ByKID(kid)
	}
	var out []jose.JSONWebKey
	for _, k := range pool {
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() { // also false for a symmetric key
			continue
		}
		out = append(out, k)
	}
	return out
}

// checkTimes applies exp and nbf with leeway. JWT access tokens must carry exp (RFC 9068
// section 2.2); introspection responses may omit it.
func checkTimes(c *Claims, now time.Time, leeway time.Duration, requireExp bool) error {
	if c.Expiry.IsZero() {
		if requireExp {
			return fail(KindExpired, "exp missing")
		}
	} else if !now.Before(c.Expiry.Add(leeway)) { // RFC 7519 section 4.1.4: on or after exp is expired
		return fail(KindExpired, "expired at %s", c.Expiry.Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return fail(KindNotYetValid, "not valid before %s", c.NotBefore.Format(time.RFC3339))
	}
	return nil
}

// KeysCurrent reports whether the key set that verified c (a result of Verify) is still its
// issuer's current one. A cache of verified tokens must check it on every hit: a key removed
// from the issuer's set then stops working at the set's next successful refresh, not when the
// cache entry ends.
func (v *Verifier) KeysCurrent(ctx context.Context, c *Claims) bool {
	is, ok := v.issuers[c.Issuer]
	if !ok || c.keys == nil {
		return false
	}
	set, err := is.Keys.Current(ctx)
	return err == nil && set == c.keys
}

// MaxBytes is the largest token the verifier looks at.
func (v *Verifier) MaxBytes() int { return v.maxBytes }

// Len is the number of configured issuers.
func (v *Verifier) Len() int { return len(v.issuers) }
