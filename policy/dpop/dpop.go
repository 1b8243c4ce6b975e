// Package dpop verifies DPoP proofs (RFC 9449): the JWT a client sends in the DPoP header to
// show it holds the private key an access token is bound to (cnf.jkt). It checks one proof
// against the request it came with, as RFC 9449 section 4.3 lists, and answers the key's
// thumbprint; whether a token must be DPoP-bound, and how a denial is challenged, is the
// policy's decision (policy/bound.go). Replay protection is a Replay: Memory in process, or
// Redis shared by every replica.
//
// Every failure is an *Error with a Kind, so the policy can deny with a precise reason.
package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Kind classifies why a proof was refused.
type Kind string

// Kinds of proof failure, in the order RFC 9449 section 4.3 checks them.
const (
	KindMissing     Kind = "missing"     // no DPoP header, or more than one (step 1)
	KindMalformed   Kind = "malformed"   // not one compact JWS, or a header or claim missing or ill-typed (steps 2, 3)
	KindType        Kind = "type"        // typ is not dpop+jwt (step 4)
	KindAlgorithm   Kind = "algorithm"   // alg not an allowed asymmetric algorithm (step 5)
	KindKey         Kind = "key"         // jwk missing, not a public signing key, or with private members (steps 6, 7)
	KindSignature   Kind = "signature"   // the signature does not verify with jwk (step 6)
	KindMethod      Kind = "method"      // htm is not the request's method (step 8)
	KindURI         Kind = "uri"         // htu is not the request's URI (step 9)
	KindNonce       Kind = "nonce"       // nonces are required and the proof has none, or not a current one (step 10)
	KindTime        Kind = "time"        // iat outside the accepted window (step 11)
	KindTokenHash   Kind = "token_hash"  // ath missing or not the hash of the access token (step 12)
	KindBinding     Kind = "binding"     // the key's thumbprint is not the token's cnf.jkt (step 12)
	KindReplay      Kind = "replay"      // the proof's jti was seen before within the window
	KindUnavailable Kind = "unavailable" // the replay store cannot answer: cannot decide
)

// Error is a proof verification failure. Its text never holds the proof or the token.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return "dpop: " + string(e.Kind) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the Kind of a proof error ("" when err is not one).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Defaults of a Verifier.
const (
	DefaultWindow   = 60 * time.Second // how old a proof may be (its iat)
	DefaultLeeway   = 5 * time.Second  // clock skew allowed either way
	DefaultMaxBytes = 8 << 10          // a proof larger than this is not looked at
)

// DefaultAlgorithms are the asymmetric algorithms a proof may use when none are configured.
var DefaultAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.EdDSA}

// Replay remembers the proofs seen: Add records key until the given time and reports whether
// it was new; now is the verifier's clock, the one until is measured on. A shared store lets
// several replicas see each proof once.
type Replay interface {
	Add(ctx context.Context, key string, now, until time.Time) (added bool, err error)
}

// Config is what a Verifier checks against.
type Config struct {
	Algorithms []jose.SignatureAlgorithm // allowed; default DefaultAlgorithms (HMAC and none are never allowed)
	Window     time.Duration             // default DefaultWindow
	Leeway     time.Duration             // default DefaultLeeway
	MaxBytes   int                       // default DefaultMaxBytes
	Replay     Replay                    // required: where jti values are remembered
	// Nonces, when set, makes every proof carry a nonce it issued (RFC 9449 section 9).
	Nonces *Nonces
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	c Config
}

// NewVerifier makes a Verifier; it refuses a configuration that would accept a symmetric or
// unsigned proof.
func NewVerifier(c Config) (*Verifier, error) {
	if c.Replay == nil {
		return nil, errors.New("dpop: a replay store is required")
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms
	}
	for _, a := range c.Algorithms {
		if !asymmetric(a) {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric signature algorithm", a)
		}
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Leeway < 0 {
		return nil, errors.New("dpop: negative leeway")
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	return &Verifier{c: c}, nil
}

// Nonces is the nonce source when proofs must carry a nonce, else nil.
func (v *Verifier) Nonces() *Nonces { return v.c.Nonces }

// Algorithms are the algorithms proofs may use (for a challenge's algs parameter).
func (v *Verifier) Algorithms() []jose.SignatureAlgorithm { return slices.Clone(v.c.Algorithms) }

func asymmetric(a jose.SignatureAlgorithm) bool {
	switch a {
	case jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512, jose.EdDSA:
		return true
	}
	return false
}

// Request is what a proof is checked against.
type Request struct {
	Method string // the HTTP method
	// URI is the request's URI as the client used it: scheme, authority and path (a query and
	// fragment are ignored). The proxy supplies the scheme and authority.
	URI string
	// AccessToken is the token the proof accompanies; empty at a token endpoint, where no ath
	// is checked.
	AccessToken string
	// JKT is the token's cnf.jkt (base64url SHA-256 JWK thumbprint); empty when the token is
	// not DPoP-bound (a token endpoint), where no binding is checked.
	JKT string
}

// Proof is a verified proof.
type Proof struct {
	JKT      string // the key's RFC 7638 SHA-256 thumbprint, base64url
	IssuedAt time.Time
}

// proofClaims are the claims of a proof, RFC 9449 section 4.2.
type proofClaims struct {
	JTI *string `json:"jti"`
	HTM *string `json:"htm"`
	HTU *string `json:"htu"`
	// Nonce is a pointer so that a nonce of the wrong type is malformed, not absent.
	Nonce *string      `json:"nonce"`
	IAT   *json.Number `json:"iat"`
	ATH   *string      `json:"ath"`
}

// Verify checks the proofs of one request: headers is every value of its DPoP header. The
// proof's jti is recorded only once every other check has passed, so a refused proof takes no
// room in the replay store.
func (v *Verifier) Verify(ctx context.Context, headers []string, r Request, now time.Time) (*Proof, error) {
	if len(headers) != 1 {
		return nil, fail(KindMissing, "%d DPoP header values, want exactly one", len(headers))
	}
	raw := headers[0]
	if len(raw) > v.c.MaxBytes {
		return nil, fail(KindMalformed, "proof larger than %d bytes", v.c.MaxBytes)
	}
	jwk, payload, err := v.signature(raw)
	if err != nil {
		return nil, err
	}
	claims, iat, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if *claims.HTM != r.Method {
		return nil, fail(KindMethod, "htm %.20q is not the request's method %q", *claims.HTM, r.Method)
	}
	if err := sameURI(*claims.HTU, r.URI); err != nil {
		return nil, err
	}
	if n := v.c.Nonces; n != nil {
		if claims.Nonce == nil {
			return nil, fail(KindNonce, "no nonce, and nonces are required")
		}
		if err := n.Check(*claims.Nonce, now); err != nil {
			return nil, &Error{Kind: KindNonce, Err: err}
		}
	}
	if iat.Before(now.Add(-v.c.Window-v.c.Leeway)) || iat.After(now.Add(v.c.Leeway)) {
		return nil, fail(KindTime, "iat %s is outside [now-%s, now+%s]", iat.UTC().Format(time.RFC3339), v.c.Window, v.c.Leeway)
	}
	if r.AccessToken != "" {
		if claims.ATH == nil {
			return nil, fail(KindTokenHash, "no ath with an access token")
		}
		if !equal(*claims.ATH, TokenHash(r.AccessToken)) {
			return nil, fail(KindTokenHash, "ath is not the hash of the access token")
		}
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fail(KindKey, "thumbprint: %v", err)
	}
	jkt := base64.RawURLEncoding.EncodeToString(thumb)
	if r.JKT != "" && !equal(jkt, r.JKT) {
		return nil, fail(KindBinding, "the proof's key is not the one the token is bound to")
	}
	// The key is the thumbprint and the jti, hashed: one client's jti values cannot collide
	// with another's, and the store never holds client text.
	key := sha256.Sum256([]byte(jkt + "\x00" + *claims.JTI))
	added, err := v.c.Replay.Add(ctx, base64.RawURLEncoding.EncodeToString(key[:]), now, iat.Add(v.c.Window+2*v.c.Leeway))
	switch {
	case err != nil:
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("replay store: %w", err)}
	case !added:
		return nil, fail(KindReplay, "the proof's jti was used before")
	}
	return &Proof{JKT: jkt, IssuedAt: iat}, nil
}

// TokenHash is the ath of an access token: base64url(SHA-256(token)).
func TokenHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// proofHeader is the protected header of a proof, read before any verification.
type proofHeader struct {
	Typ *string          `json:"typ"`
	Alg *string          `json:"alg"`
	JWK *json.RawMessage `json:"jwk"`
}

// signature checks the header (typ, alg, jwk) and the signature, and returns the key and the
// verified payload.
func (v *Verifier) signature(raw string) (*jose.JSONWebKey, []byte, error) {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(raw, ".") != 2 {
		return nil, nil, fail(KindMalformed, "not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(head)
	if err != nil {
		return nil, nil, fail(KindMalformed, "header: %v", err)
	}
	var h proofHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, nil, fail(KindMalformed, "header: %v", err)
	}
	switch {
	case h.Typ == nil:
		return nil, nil, fail(KindType, "no typ")
	case !strings.EqualFold(*h.Typ, "dpop+jwt"):
		return nil, nil, fail(KindType, "typ %.40q, want dpop+jwt", *h.Typ)
	case h.Alg == nil:
		return nil, nil, fail(KindMalformed, "no alg")
	case !slices.Contains(v.c.Algorithms, jose.SignatureAlgorithm(*h.Alg)):
		return nil, nil, fail(KindAlgorithm, "alg %.20q is not allowed", *h.Alg)
	case h.JWK == nil:
		return nil, nil, fail(KindKey, "no jwk")
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(*h.Alg)})
	if err != nil {
		// go-jose parses the embedded jwk too: say whether the key is what it refused.
		if kerr := publicKey(*h.JWK); kerr != nil {
			return nil, nil, kerr
		}
		return nil, nil, fail(KindMalformed, "%v", err)
	}
	// The key go-jose parsed from the protected header, the one the signature is checked with:
	// parsed once.
	jwk := jws.Signatures[0].Protected.JSONWebKey
	if jwk == nil {
		return nil, nil, fail(KindKey, "no jwk")
	}
	if err := checkPublic(jwk); err != nil {
		return nil, nil, err
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return nil, nil, fail(KindSignature, "signature does not verify with the proof's jwk")
	}
	return jwk, payload, nil
}

// publicKey parses raw as a JWK and says why it is not an acceptable proof key, nil if it is.
func publicKey(raw json.RawMessage) error {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return fail(KindKey, "jwk: %v", err)
	}
	return checkPublic(&jwk)
}

// checkPublic: a proof key is a valid public asymmetric key (RFC 9449 section 4.3 step 7: no
// private members).
func checkPublic(jwk *jose.JSONWebKey) error {
	if _, symmetric := jwk.Key.([]byte); symmetric {
		return fail(KindKey, "jwk is a symmetric key")
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return fail(KindKey, "jwk is not a public key")
	}
	return nil
}

// parseClaims reads the claims every proof has (jti, htm, htu, iat) and ath.
func parseClaims(payload []byte) (*proofClaims, time.Time, error) {
	var c proofClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, time.Time{}, fail(KindMalformed, "claims: %v", err)
	}
	switch {
	case c.JTI == nil || *c.JTI == "":
		return nil, time.Time{}, fail(KindMalformed, "no jti")
	case len(*c.JTI) > 256:
		return nil, time.Time{}, fail(KindMalformed, "jti longer than 256 bytes")
	case c.HTM == nil:
		return nil, time.Time{}, fail(KindMalformed, "no htm")
	case c.HTU == nil:
		return nil, time.Time{}, fail(KindMalformed, "no htu")
	case c.IAT == nil:
		return nil, time.Time{}, fail(KindMalformed, "no iat")
	}
	secs, err := c.IAT.Float64()
	if err != nil || secs < 0 || secs > 1<<40 {
		return nil, time.Time{}, fail(KindMalformed, "iat is not a NumericDate")
	}
	whole := int64(secs)
	return &c, time.Unix(whole, int64((secs-float64(whole))*1e9)), nil
}
