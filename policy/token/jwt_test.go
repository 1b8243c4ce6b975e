package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy/jwks"
)

// t0 is the fixed "now" of these tests.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://as.example"
	testAudience = "https://api.example"
	testX5t      = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
)

// clock is an injected time source, read concurrently by background fetches.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// signingKey is a fresh issuer key.
type signingKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) *signingKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key type for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{priv: priv, alg: alg, kid: kid}
}

// as returns the same key signing with another algorithm or kid.
func (k *signingKey) as(alg jose.SignatureAlgorithm, kid string) *signingKey {
	return &signingKey{priv: k.priv, alg: alg, kid: kid}
}

// jwk is the key's public JWK with the given use and alg members ("" to omit).
func (k *signingKey) jwk(use, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: use, Algorithm: alg}
}

// setOf publishes keys as a JWK Set and parses it as certbind would.
func setOf(t *testing.T, keys ...jose.JSONWebKey) *jwks.Set {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwks.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// omit, as a claim or header value, removes it.
var omit = &struct{}{}

// claims are a valid RFC 9068 access token's claims at t0, changed by over.
func claims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss":       testIssuer,
		"sub":       "user-1",
		"client_id": "billing",
		"aud":       testAudience,
		"iat":       t0.Unix(),
		"exp":       t0.Add(time.Hour).Unix(),
		"jti":       "j1",
		"scope":     "read write",
		"cnf":       map[string]any{"x5t#S256": testX5t},
	}
	for k, v := range over {
		if v == omit {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// mint signs claims with go-jose. The header carries typ at+jwt and the key's kid unless hdr
// says otherwise (omit removes typ).
func (k *signingKey) mint(t *testing.T, c map[string]any, hdr map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return k.mintRaw(t, payload, hdr)
}

func (k *signingKey) mintRaw(t *testing.T, payload []byte, hdr map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}}
	for name, v := range hdr {
		if v == omit {
			delete(opts.ExtraHeaders, jose.HeaderKey(name))
		} else {
			opts.ExtraHeaders[jose.HeaderKey(name)] = v
		}
	}
	var key any = k.priv
	if k.kid != "" {
		key = jose.JSONWebKey{Key: k.priv, KeyID: k.kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var b64 = base64.RawURLEncoding

// handmade builds a compact ES256 JWS from header and payload JSON exactly as written, for the
// shapes go-jose will not produce (duplicate header members, odd types).
func (k *signingKey) handmade(t *testing.T, header, payload string) string {
	t.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig)
}

// unencoded is a compact ES256 JWS with "b64": false (RFC 7797): the payload travels as is.
func (k *signingKey) unencoded(t *testing.T, payload string) string {
	t.Helper()
	input := b64.EncodeToString([]byte(`{"alg":"ES256","kid":"es","typ":"at+jwt","b64":false,"crit":["b64"]}`)) + "." + payload
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// failingSource never has keys.
type failingSource struct{}

func (failingSource) Current(context.Context) (*jwks.Set, error) {
	return nil, jwks.ErrNotLoaded
}

func TestVerify(t *testing.T) {
	es := newKey(t, jose.ES256, "es")
	rs := newKey(t, jose.RS256, "rs")
	ed := newKey(t, jose.EdDSA, "ed")
	p384 := newKey(t, jose.ES384, "es384")
	enc := newKey(t, jose.ES256, "enc")
	sigOnly384 := newKey(t, jose.ES256, "only-384") // published with alg ES384
	stranger := newKey(t, jose.ES256, "es")         // same kid as es, key not published
	set := setOf(t,
		es.jwk("sig", "ES256"), rs.jwk("", ""), ed.jwk("sig", ""), p384.jwk("sig", "ES384"),
		enc.jwk("enc", ""), sigOnly384.jwk("sig", "ES384"))

	issuer := func() *Issuer {
		return &Issuer{
			Issuer:     testIssuer,
			Keys:       jwks.NewStatic(set),
			Audiences:  []string{testAudience, "https://other.example"},
			Algorithms: []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA},
			Types:      []string{"at+jwt"},
			Leeway:     30 * time.Second,
		}
	}
	good := es.mint(t, claims(nil), nil)
	goodParts := strings.Split(good, ".")
	hdrES := b64.EncodeToString([]byte(`{"alg":"ES256","kid":"es","typ":"at+jwt"}`))
	payloadOK := b64.EncodeToString([]byte(mustJSON(t, claims(nil))))

	tests := []struct {
		name   string
		token  string
		config func(*Issuer)
		kind   Kind  // "" for success unless is is set
		is     error // errors.Is target
	}{
		// Accepted.
		{"ES256 with kid", good, nil, "", nil},
		{"RS256", rs.mint(t, claims(nil), nil), nil, "", nil},
		{"PS256 with a key without alg", rs.as(jose.PS256, "rs").mint(t, claims(nil), nil), nil, "", nil},
		{"EdDSA", ed.mint(t, claims(nil), nil), nil, "", nil},
		{"no kid: every candidate tried", es.as(jose.ES256, "").mint(t, claims(nil), nil), nil, "", nil},
		{"typ application/at+jwt", es.mint(t, claims(nil), map[string]any{"typ": "application/at+jwt"}), nil, "", nil},
		{"typ in capitals", es.mint(t, claims(nil), map[string]any{"typ": "AT+JWT"}), nil, "", nil},
		{"typ mixed case with prefix", es.mint(t, claims(nil), map[string]any{"typ": "Application/At+Jwt"}), nil, "", nil},
		{"typ missing when allowed", es.mint(t, claims(nil), map[string]any{"typ": omit}), func(is *Issuer) { is.AllowMissingType = true }, "", nil},
		{"configured application/at+jwt", good, func(is *Issuer) { is.Types = []string{"application/at+jwt"} }, "", nil},
		{"aud array holding a configured audience", es.mint(t, claims(map[string]any{"aud": []string{"x", "https://other.example"}}), nil), nil, "", nil},
		{"expired within leeway", es.mint(t, claims(map[string]any{"exp": t0.Add(-29 * time.Second).Unix()}), nil), nil, "", nil},
		// RFC 7519 section 4.1.4: at exp (plus leeway) the token is already expired.
		{"expired exactly at the leeway's end", es.mint(t, claims(map[string]any{"exp": t0.Add(-30 * time.Second).Unix()}), nil), nil, KindExpired, nil},
		{"nbf within leeway", es.mint(t, claims(map[string]any{"nbf": t0.Add(30 * time.Second).Unix()}), nil), nil, "", nil},
		{"fractional exp", es.mint(t, claims(map[string]any{"exp": float64(t0.Unix()) + 0.5}), nil), func(is *Issuer) { is.Leeway = 0 }, "", nil},
		{"without cnf", es.mint(t, claims(map[string]any{"cnf": omit}), nil), nil, "", nil},

		// Not a JWT at all: maybe an opaque token.
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", nil, "", ErrNotJWT},
		{"two parts", "a.b", nil, "", ErrNotJWT},
		{"JWE shape", "a.b.c.d.e", nil, "", ErrNotJWT},

		// Malformed.
		{"too large", es.mint(t, claims(map[string]any{"sub": strings.Repeat("u", DefaultMaxTokenBytes)}), nil), nil, KindMalformed, nil},
		{"payload not base64url", goodParts[0] + ".!!!." + goodParts[2], nil, KindMalformed, nil},
		{"payload padded", goodParts[0] + "." + base64.URLEncoding.EncodeToString([]byte(mustJSON(t, claims(nil)))) + "." + goodParts[2], nil, KindMalformed, nil},
		{"payload not an object", goodParts[0] + "." + b64.EncodeToString([]byte(`["iss"]`)) + "." + goodParts[2], nil, KindMalformed, nil},
		{"payload with trailing data", es.mintRaw(t, []byte(mustJSON(t, claims(nil))+`{}`), nil), nil, KindMalformed, nil},
		{"duplicate iss", es.mintRaw(t, []byte(`{"iss":"https://evil.example","iss":"`+testIssuer+`","exp":9999999999,"aud":"`+testAudience+`"}`), nil), nil, KindMalformed, nil},
		{"duplicate member inside cnf", es.mintRaw(t, []byte(`{"iss":"`+testIssuer+`","exp":9999999999,"aud":"`+testAudience+`","cnf":{"x5t#S256":"a","x5t#S256":"b"}}`), nil), nil, KindMalformed, nil},
		{"claims 40 levels deep", es.mintRaw(t, []byte(`{"iss":"`+testIssuer+`","exp":9999999999,"aud":"`+testAudience+`","x":`+nested(39)+`}`), nil), nil, KindMalformed, nil},
		{"iss not a string", es.mint(t, claims(map[string]any{"iss": 1}), nil), nil, KindMalformed, nil},
		{"aud a number", es.mint(t, claims(map[string]any{"aud": 1}), nil), nil, KindMalformed, nil},
		{"aud with a number", es.mint(t, claims(map[string]any{"aud": []any{testAudience, 1}}), nil), nil, KindMalformed, nil},
		{"exp a string", es.mint(t, claims(map[string]any{"exp": "9999999999"}), nil), nil, KindMalformed, nil},
		{"cnf x5t#S256 empty", es.mint(t, claims(map[string]any{"cnf": map[string]any{"x5t#S256": ""}}), nil), nil, KindMalformed, ErrConfirmation},
		{"header not base64url", "!!!." + payloadOK + "." + goodParts[2], nil, KindMalformed, nil},
		{"header not JSON", b64.EncodeToString([]byte(`alg`)) + "." + payloadOK + "." + goodParts[2], nil, KindMalformed, nil},
		{"duplicate alg in header", es.handmade(t, `{"alg":"ES256","alg":"ES256","kid":"es","typ":"at+jwt"}`, mustJSON(t, claims(nil))), nil, KindMalformed, nil},
		{"duplicate typ in header", es.handmade(t, `{"alg":"ES256","kid":"es","typ":"JWT","typ":"at+jwt"}`, mustJSON(t, claims(nil))), nil, KindMalformed, nil},
		{"alg missing", es.handmade(t, `{"kid":"es","typ":"at+jwt"}`, mustJSON(t, claims(nil))), nil, KindMalformed, nil},
		{"alg not a string", es.handmade(t, `{"alg":7,"kid":"es","typ":"at+jwt"}`, mustJSON(t, claims(nil))), nil, KindMalformed, nil},
		{"signature not base64url", hdrES + "." + payloadOK + ".!!!", nil, KindMalformed, nil},
		// RFC 7797 unencoded payloads: JSON claims break the compact shape; a base64url payload
		// would be verified as its own text, never as the claims PeekIssuer read.
		{"unencoded payload (RFC 7797)", es.unencoded(t, mustJSON(t, claims(nil))), nil, "", ErrNotJWT},
		{"unencoded payload that is base64url", es.unencoded(t, payloadOK), nil, KindMalformed, nil},
		// certbind supports no critical header extension: refused before any signature work.
		{"unsupported crit header", es.handmade(t, `{"alg":"ES256","kid":"es","typ":"at+jwt","crit":["x"],"x":1}`, mustJSON(t, claims(nil))), nil, KindMalformed, nil},

		// Issuer.
		{"unknown issuer", es.mint(t, claims(map[string]any{"iss": "https://evil.example"}), nil), nil, KindIssuer, nil},
		{"issuer differing by a slash", es.mint(t, claims(map[string]any{"iss": testIssuer + "/"}), nil), nil, KindIssuer, nil},
		{"no iss", es.mint(t, claims(map[string]any{"iss": omit}), nil), nil, KindIssuer, nil},

		// Algorithm allow-list, before any key is touched.
		{"alg none", hdrNone() + "." + payloadOK + ".", nil, KindAlgorithm, nil},
		{"alg none with a signature", hdrNone() + "." + payloadOK + "." + goodParts[2], nil, KindAlgorithm, nil},
		{"HS256 keyed with the public key", hs256(t, es, mustJSON(t, claims(nil))), nil, KindAlgorithm, nil},
		{"HS256 even if misconfigured", hs256(t, es, mustJSON(t, claims(nil))),
			func(is *Issuer) { is.Algorithms = append(is.Algorithms, jose.HS256) }, KindSignature, nil},
		{"ES384 not allowed", p384.mint(t, claims(nil), nil), nil, KindAlgorithm, nil},
		{"RS256 not allowed for this issuer", rs.mint(t, claims(nil), nil), func(is *Issuer) { is.Algorithms = []jose.SignatureAlgorithm{jose.ES256} }, KindAlgorithm, nil},
		{"no algorithms configured", good, func(is *Issuer) { is.Algorithms = nil }, KindAlgorithm, nil},

		// typ.
		{"typ JWT", es.mint(t, claims(nil), map[string]any{"typ": "JWT"}), nil, KindType, nil},
		{"typ application/jwt", es.mint(t, claims(nil), map[string]any{"typ": "application/jwt"}), nil, KindType, nil},
		{"typ missing", es.mint(t, claims(nil), map[string]any{"typ": omit}), nil, KindType, nil},
		{"typ a number", es.mint(t, claims(nil), map[string]any{"typ": 1}), nil, KindType, nil},
		{"typ with a space", es.mint(t, claims(nil), map[string]any{"typ": "at+jwt "}), nil, KindType, nil},

		// Keys.
		{"unknown kid", es.as(jose.ES256, "gone").mint(t, claims(nil), nil), nil, KindUnknownKey, nil},
		{"kid of an encryption key", enc.mint(t, claims(nil), nil), nil, KindUnknownKey, nil},
		{"kid of a key published for ES384", sigOnly384.mint(t, claims(nil), nil), nil, KindUnknownKey, nil},
		{"RS256 naming an ES256 key", rs.as(jose.RS256, "es").mint(t, claims(nil), nil), nil, KindUnknownKey, nil},
		{"keys unavailable", good, func(is *Issuer) { is.Keys = failingSource{} }, KindUnavailable, jwks.ErrNotLoaded},

		// Signature.
		{"signed by another key with the same kid", stranger.mint(t, claims(nil), nil), nil, KindSignature, nil},
		{"no kid, signed by an unpublished key", stranger.as(jose.ES256, "").mint(t, claims(nil), nil), nil, KindSignature, nil},
		{"payload swapped", goodParts[0] + "." + b64.EncodeToString([]byte(mustJSON(t, claims(map[string]any{"sub": "admin"})))) + "." + goodParts[2], nil, KindSignature, nil},
		{"signature of another token", goodParts[0] + "." + goodParts[1] + "." + strings.Split(es.mint(t, claims(map[string]any{"jti": "j2"}), nil), ".")[2], nil, KindSignature, nil},

		// Time.
		{"expired", es.mint(t, claims(map[string]any{"exp": t0.Add(-31 * time.Second).Unix()}), nil), nil, KindExpired, nil},
		{"expired, no leeway", es.mint(t, claims(map[string]any{"exp": t0.Add(-time.Second).Unix()}), nil), func(is *Issuer) { is.Leeway = 0 }, KindExpired, nil},
		{"fractional exp just past", es.mint(t, claims(map[string]any{"exp": float64(t0.Unix()) - 0.5}), nil), func(is *Issuer) { is.Leeway = 0 }, KindExpired, nil},
		{"exp missing", es.mint(t, claims(map[string]any{"exp": omit}), nil), nil, KindExpired, nil},
		{"not yet valid", es.mint(t, claims(map[string]any{"nbf": t0.Add(31 * time.Second).Unix()}), nil), nil, KindNotYetValid, nil},

		// Audience.
		{"other audience", es.mint(t, claims(map[string]any{"aud": "https://evil.example"}), nil), nil, KindAudience, nil},
		{"no audience", es.mint(t, claims(map[string]any{"aud": omit}), nil), nil, KindAudience, nil},
		{"empty audience array", es.mint(t, claims(map[string]any{"aud": []string{}}), nil), nil, KindAudience, nil},
		{"audience prefix", es.mint(t, claims(map[string]any{"aud": testAudience + "/v1"}), nil), nil, KindAudience, nil},
	}
	// Where go-jose would refuse the token too, the kind alone cannot show that certbind's own
	// check caught it first: these rows also name the message.
	wantMsg := map[string]string{
		"too large":                       "token larger than",
		"duplicate iss":                   `duplicate member "iss"`,
		"duplicate member inside cnf":     `duplicate member "x5t#S256"`,
		"duplicate alg in header":         `header: duplicate member "alg"`,
		"duplicate typ in header":         `header: duplicate member "typ"`,
		"alg missing":                     "header alg missing or not a string",
		"alg not a string":                "header alg missing or not a string",
		"unsupported crit header":         "no critical extension is supported",
		"HS256 keyed with the public key": `alg "HS256" is not allowed`,
		"alg none":                        `alg "none" is not allowed`,
	}
	seen := 0
	for _, tt := range tests {
		if _, ok := wantMsg[tt.name]; ok {
			seen++
		}
	}
	if seen != len(wantMsg) {
		t.Fatalf("wantMsg names %d rows, the table has %d of them", len(wantMsg), seen)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := issuer()
			if tt.config != nil {
				tt.config(is)
			}
			c, err := NewVerifier([]*Issuer{is}, 0).Verify(t.Context(), tt.token, t0)
			if tt.kind == "" && tt.is == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Issuer != testIssuer || c.Subject != "user-1" || c.ClientID != "billing" {
					t.Errorf("claims %+v", *c)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", *c)
			}
			if c != nil {
				t.Errorf("claims returned with error %v", err)
			}
			if KindOf(err) != tt.kind {
				t.Errorf("kind %q (%v), want %q", KindOf(err), err, tt.kind)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if m, ok := wantMsg[tt.name]; ok && !strings.Contains(err.Error(), m) {
				t.Errorf("error %q does not say %q", err, m)
			}
		})
	}
}

func hdrNone() string { return b64.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) }

// hs256 is the key-confusion attack: HMAC keyed with the bytes of the issuer's public key.
func hs256(t *testing.T, k *signingKey, payload string) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) + "." + b64.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

func TestVerifyClaims(t *testing.T) {
	es := newKey(t, jose.ES256, "es")
	v := NewVerifier([]*Issuer{{Issuer: testIssuer, Keys: jwks.NewStatic(setOf(t, es.jwk("sig", ""))),
		Audiences: []string{testAudience}, Algorithms: []jose.SignatureAlgorithm{jose.ES256}, Types: []string{"at+jwt"}}}, 0)
	tok := es.mint(t, claims(map[string]any{"client_id": omit, "azp": "billing", "aud": []string{testAudience, "x"},
		"scope": omit, "scp": []string{"read", "write"}, "nbf": t0.Unix(), "exp": float64(t0.Add(time.Hour).Unix()) + 0.25}), nil)
	c, err := v.Verify(t.Context(), tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Issuer: testIssuer, Subject: "user-1", ClientID: "billing", Audience: []string{testAudience, "x"},
		Scopes: []string{"read", "write"}, Expiry: t0.Add(time.Hour + 250*time.Millisecond), NotBefore: t0,
		Confirmation: &Confirmation{X5tS256: testX5t, Members: []string{"x5t#S256"}}}
	if !claimsEqual(c, &want) {
		t.Errorf("claims\n got %+v\nwant %+v", *c, want)
	}
}

func TestVerifierLimits(t *testing.T) {
	es := newKey(t, jose.ES256, "es")
	is := &Issuer{Issuer: testIssuer, Keys: jwks.NewStatic(setOf(t, es.jwk("sig", ""))),
		Audiences: []string{testAudience}, Algorithms: []jose.SignatureAlgorithm{jose.ES256}, Types: []string{"at+jwt"}}
	tok := es.mint(t, claims(nil), nil)
	tests := []struct {
		maxBytes int
		kind     Kind
	}{
		{len(tok), ""},
		{len(tok) - 1, KindMalformed},
		{0, ""}, // DefaultMaxTokenBytes
	}
	for _, tt := range tests {
		v := NewVerifier([]*Issuer{is}, tt.maxBytes)
		_, err := v.Verify(t.Context(), tok, t0)
		if KindOf(err) != tt.kind || (tt.kind == "") != (err == nil) {
			t.Errorf("maxBytes %d: error %v, want kind %q", tt.maxBytes, err, tt.kind)
		}
	}
	v := NewVerifier([]*Issuer{is}, 0)
	if _, ok := v.issuers[testIssuer+"/"]; v.MaxBytes() != DefaultMaxTokenBytes || v.Len() != 1 || v.issuers[testIssuer] == nil || ok {
		t.Errorf("MaxBytes %d, Len %d, issuers %v", v.MaxBytes(), v.Len(), v.issuers)
	}
}

func TestPeek(t *testing.T) {
	es := newKey(t, jose.ES256, "es")
	tests := []struct {
		name  string
		token string
		want  string
		kind  Kind
		is    error
	}{
		{"signed token", es.mint(t, claims(nil), nil), testIssuer, "", nil},
		{"unsigned is fine for peeking", "e30." + b64.EncodeToString([]byte(`{"iss":"x"}`)) + ".", "x", "", nil},
		{"no iss", "e30.e30.", "", "", nil},
		{"not three parts", "abc", "", "", ErrNotJWT},
		{"four parts", "a.e30.c.d", "", "", ErrNotJWT},
		{"payload not base64url", "e30.e30=.", "", KindMalformed, nil},
		{"payload not JSON", "e30." + b64.EncodeToString([]byte(`iss`)) + ".", "", KindMalformed, nil},
		{"payload with duplicate iss", "e30." + b64.EncodeToString([]byte(`{"iss":"a","iss":"b"}`)) + ".", "", KindMalformed, nil},
		{"iss not a string", "e30." + b64.EncodeToString([]byte(`{"iss":["a"]}`)) + ".", "", KindMalformed, nil},
		{"other claim of the wrong type", "e30." + b64.EncodeToString([]byte(`{"iss":"a","aud":1}`)) + ".", "", KindMalformed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := peek(tt.token)
			if tt.kind == "" && tt.is == nil {
				if err != nil || c.Issuer != tt.want {
					t.Fatalf("peek = %+v, %v; want iss %q", c, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("peek = %+v, want an error", c)
			}
			if KindOf(err) != tt.kind || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("error %v (kind %q), want kind %q / %v", err, KindOf(err), tt.kind, tt.is)
			}
		})
	}
}

func TestCheckType(t *testing.T) {
	tests := []struct {
		name         string
		types        []string
		allowMissing bool
		typ          any
		ok           bool
	}{
		{"exact", []string{"at+jwt"}, false, "at+jwt", true},
		{"capitals", []string{"at+jwt"}, false, "AT+JWT", true},
		{"with prefix", []string{"at+jwt"}, false, "application/at+jwt", true},
		{"prefix in capitals", []string{"at+jwt"}, false, "APPLICATION/AT+JWT", true},
		{"configured with prefix", []string{"Application/AT+JWT"}, false, "at+jwt", true},
		{"second configured type", []string{"at+jwt", "jwt"}, false, "JWT", true},
		{"missing, allowed", []string{"at+jwt"}, true, nil, true},
		{"missing, allowed, no types", nil, true, nil, true},

		{"missing", []string{"at+jwt"}, false, nil, false},
		{"JWT", []string{"at+jwt"}, false, "JWT", false},
		{"application/jwt", []string{"at+jwt"}, false, "application/jwt", false},
		{"empty", []string{"at+jwt"}, false, "", false},
		{"prefix only", []string{"at+jwt"}, false, "application/", false},
		{"other prefix", []string{"at+jwt"}, false, "text/at+jwt", false},
		{"prefix twice", []string{"at+jwt"}, false, "application/application/at+jwt", false},
		{"trailing space", []string{"at+jwt"}, false, "at+jwt ", false},
		{"not a string", []string{"at+jwt"}, true, 1.0, false},
		{"an array", []string{"at+jwt"}, true, []any{"at+jwt"}, false},
		{"no types configured", nil, false, "at+jwt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := &Issuer{Types: tt.types, AllowMissingType: tt.allowMissing}
			err := is.checkType(tt.typ)
			if tt.ok {
				if err != nil {
					t.Fatalf("checkType(%v): %v", tt.typ, err)
				}
				return
			}
			if KindOf(err) != KindType {
				t.Errorf("checkType(%v) = %v, want kind %q", tt.typ, err, KindType)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	a1 := newKey(t, jose.ES256, "a")
	a2 := newKey(t, jose.ES256, "a")
	a3 := newKey(t, jose.ES256, "a")
	a4 := newKey(t, jose.ES256, "a")
	b := newKey(t, jose.ES256, "b")
	set := setOf(t,
		a1.jwk("sig", "ES256"), // matches ES256
		a2.jwk("", ""),         // matches any alg: no use, no alg
		a3.jwk("enc", ""),      // encryption key
		a4.jwk("sig", "RS256"), // declared for another alg
		b.jwk("sig", "ES256"),  // another kid
	)
	keyOf := func(k *signingKey) crypto.PublicKey { return k.priv.Public() }
	tests := []struct {
		name string
		kid  string
		alg  jose.SignatureAlgorithm
		want []crypto.PublicKey
	}{
		{"kid a, ES256", "a", jose.ES256, []crypto.PublicKey{keyOf(a1), keyOf(a2)}},
		{"kid a, RS256", "a", jose.RS256, []crypto.PublicKey{keyOf(a2), keyOf(a4)}},
		{"kid b", "b", jose.ES256, []crypto.PublicKey{keyOf(b)}},
		{"kid b, other alg", "b", jose.ES384, nil},
		{"unknown kid", "c", jose.ES256, nil},
		{"no kid: all keys", "", jose.ES256, []crypto.PublicKey{keyOf(a1), keyOf(a2), keyOf(b)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := candidates(set, tt.kid, tt.alg)
			if len(got) != len(tt.want) {
				t.Fatalf("%d candidates, want %d", len(got), len(tt.want))
			}
			for i, k := range got {
				if !k.Key.(*ecdsa.PublicKey).Equal(tt.want[i]) {
					t.Errorf("candidate %d is not the expected key", i)
				}
			}
		})
	}

	// jwks.Parse refuses private and symmetric keys, so a Set never holds one; write them into a
	// parsed set through Keys() to check that candidates still never offers them.
	t.Run("private and symmetric keys", func(t *testing.T) {
		priv := newKey(t, jose.ES256, "p")
		s := setOf(t, priv.jwk("sig", ""), priv.jwk("", ""), b.jwk("", ""))
		s.Keys()[0] = jose.JSONWebKey{Key: priv.priv, KeyID: "p", Use: "sig"}
		s.Keys()[1] = jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "p"}
		for _, kid := range []string{"p", ""} {
			for _, k := range candidates(s, kid, jose.ES256) {
				if !k.IsPublic() {
					t.Errorf("kid %q: candidate %T is not a public key", kid, k.Key)
				}
			}
		}
		if got := candidates(s, "p", jose.ES256); len(got) != 0 {
			t.Errorf("kid p: %d candidates, want none", len(got))
		}
		if got := candidates(s, "", jose.ES256); len(got) != 1 {
			t.Errorf("no kid: %d candidates, want only the public key", len(got))
		}
	})
}

func TestAsymmetricAlgorithm(t *testing.T) {
	for alg, want := range map[string]bool{
		"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
		"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
		"none": false, "": false, "HS256": false, "HS384": false, "HS512": false, "es256": false, "RSA-OAEP": false,
	} {
		if got := AsymmetricAlgorithm(alg); got != want {
			t.Errorf("AsymmetricAlgorithm(%q) = %v, want %v", alg, got, want)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for raw, want := range map[string]bool{"a.b.c": true, "..": true, "abc": false, "a.b": false, "a.b.c.d.e": false, "": false} {
		if got := LooksLikeJWT(raw); got != want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", raw, got, want)
		}
	}
}

// jwksServer serves a JWK Set and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	body []byte
}

func newJWKSServer(t *testing.T, s *jwks.Set) *jwksServer {
	t.Helper()
	srv := &jwksServer{}
	srv.publish(t, s.Keys()...)
	srv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.hits.Add(1)
		srv.mu.Lock()
		body := srv.body
		srv.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (s *jwksServer) publish(t *testing.T, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// TestVerifyKeyRotation: a token naming a kid the cached set lacks forces a refetch, at most
// once per MinInterval however many such tokens arrive (counted at the server).
func TestVerifyKeyRotation(t *testing.T) {
	old, next := newKey(t, jose.ES256, "2025"), newKey(t, jose.ES256, "2026")
	srv := newJWKSServer(t, setOf(t, old.jwk("sig", "ES256")))
	clk := newClock()
	remote := jwks.NewRemote(srv.URL, jwks.RemoteOptions{Now: clk.Now, MinInterval: time.Minute, RefreshInterval: time.Hour})
	v := NewVerifier([]*Issuer{{Issuer: testIssuer, Keys: remote, Audiences: []string{testAudience},
		Algorithms: []jose.SignatureAlgorithm{jose.ES256, jose.RS256}, Types: []string{"at+jwt"}}}, 0)
	ghost := newKey(t, jose.ES256, "ghost")
	rsGhost := newKey(t, jose.RS256, "")

	steps := []struct {
		name     string
		advance  time.Duration
		token    string
		repeat   int
		kind     Kind
		wantHits int64
	}{
		{"old key, first fetch", 0, old.mint(t, claims(nil), nil), 1, "", 1},
		{"new kid within MinInterval of the first fetch", 0, next.mint(t, claims(nil), nil), 1, KindUnknownKey, 1},
		{"new kid after MinInterval: one refetch", time.Minute, next.mint(t, claims(nil), nil), 1, "", 2},
		{"new kid again: cached", 0, next.mint(t, claims(nil), nil), 5, "", 2},
		{"unknown kid flood", time.Second, ghost.mint(t, claims(nil), nil), 100, KindUnknownKey, 2},
		{"unknown kid flood after MinInterval: one refetch", time.Minute, ghost.mint(t, claims(nil), nil), 100, KindUnknownKey, 3},
		{"no kid, unknown key: no refetch", time.Minute, ghost.as(jose.ES256, "").mint(t, claims(nil), nil), 10, KindSignature, 3},
		{"no kid, no key for the alg: no refetch", time.Minute, rsGhost.mint(t, claims(nil), nil), 10, KindUnknownKey, 3},
		{"old key still served", 0, old.mint(t, claims(nil), nil), 1, "", 3},
	}
	for _, st := range steps {
		if st.name == "new kid within MinInterval of the first fetch" {
			srv.publish(t, next.jwk("sig", "ES256"), old.jwk("sig", "ES256"))
		}
		clk.Advance(st.advance)
		var wg sync.WaitGroup
		for range st.repeat {
			wg.Go(func() {
				_, err := v.Verify(t.Context(), st.token, clk.Now())
				if KindOf(err) != st.kind || (st.kind == "") != (err == nil) {
					t.Errorf("%s: error %v, want kind %q", st.name, err, st.kind)
				}
			})
		}
		wg.Wait()
		if n := srv.hits.Load(); n != st.wantHits {
			t.Fatalf("%s: server hit %d times, want %d", st.name, n, st.wantHits)
		}
	}
}

// TestVerifyKeysNeverLoaded: an unreachable jwks_uri is "unavailable", not a bad token.
func TestVerifyKeysNeverLoaded(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	es := newKey(t, jose.ES256, "es")
	remote := jwks.NewRemote(srv.URL, jwks.RemoteOptions{Now: newClock().Now})
	v := NewVerifier([]*Issuer{{Issuer: testIssuer, Keys: remote, Audiences: []string{testAudience},
		Algorithms: []jose.SignatureAlgorithm{jose.ES256}, Types: []string{"at+jwt"}}}, 0)
	_, err := v.Verify(t.Context(), es.mint(t, claims(nil), nil), t0)
	if KindOf(err) != KindUnavailable || !errors.Is(err, jwks.ErrNotLoaded) {
		t.Fatalf("error %v, want %q wrapping ErrNotLoaded", err, KindUnavailable)
	}
}
