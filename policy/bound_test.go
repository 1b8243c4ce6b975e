package policy_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

const (
	testIssuer   = "https://as.example.org"
	testAudience = "https://api.example.org"
)

// issuerKeys is a test authorization server's signing keys.
type issuerKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newIssuerKeys(t testing.TB) *issuerKeys {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &issuerKeys{rsa: r, ec: e}
}

func (k *issuerKeys) jwks(t testing.TB, kids ...string) []byte {
	t.Helper()
	if len(kids) == 0 {
		kids = []string{"rsa-1", "ec-1"}
	}
	var set jose.JSONWebKeySet
	for _, kid := range kids {
		var pub crypto.PublicKey = &k.rsa.PublicKey
		alg := "RS256"
		if strings.HasPrefix(kid, "ec") {
			pub, alg = &k.ec.PublicKey, "ES256"
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are a valid RFC 9068 access token's claims bound to cert (nil: unbound).
func claims(cert *pki.Cert) map[string]any {
	c := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1", "client_id": "billing",
		"exp": t0.Add(time.Hour).Unix(), "iat": t0.Add(-time.Minute).Unix(), "jti": "t1", "scope": "read write",
	}
	if cert != nil {
		c["cnf"] = map[string]any{"x5t#S256": policy.ThumbprintOf(cert.DER()).String()}
	}
	return c
}

func (k *issuerKeys) sign(t testing.TB, kid string, hdr map[string]any, c map[string]any) string {
	t.Helper()
	var key any = k.rsa
	alg := jose.RS256
	if strings.HasPrefix(kid, "ec") {
		key, alg = k.ec, jose.ES256
	}
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid)
	for name, v := range hdr {
		opts = opts.WithHeader(jose.HeaderKey(name), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forge builds a JWS by hand, for what no honest library will sign.
func forge(hdr, c map[string]any, sig func(signingInput string) []byte) string {
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(c)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig(in))
}

func tokenConfig(jwksLine, binding string) string {
	return exampleConfig + `tokens:
  realm: api
  issuers:
    - issuer: ` + testIssuer + `
      ` + jwksLine + `
      audiences: [` + testAudience + `]
      binding: ` + binding + `
`
}

func apiRequest(tok string) policy.Request {
	h := map[string]string{}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	return policy.Request{Method: "GET", Path: "/api/things", Headers: h}
}

func TestBoundTokenJWT(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	required := w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", "required"))
	optional := w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", "optional"))

	with := func(mut func(map[string]any)) map[string]any {
		c := claims(w.billing)
		mut(c)
		return c
	}
	rsaPubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	hs256 := func(secret []byte) func(string) []byte {
		return func(in string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return m.Sum(nil)
		}
	}
	thumb := policy.ThumbprintOf(w.billing.DER())
	// A certificate whose thumbprint uses '-' or '_', so the standard alphabet differs.
	urlSafe := w.billing
	for !strings.ContainsAny(policy.ThumbprintOf(urlSafe.DER()).String(), "-_") {
		urlSafe = w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"))
	}
	tests := []struct {
		name   string
		engine *policy.Engine
		tok    string
		cert   *pki.Cert
		want   policy.Reason
	}{
		{"valid bound token, RS256", required, k.sign(t, "rsa-1", nil, claims(w.billing)), w.billing, policy.ReasonOK},
		{"valid bound token, ES256", required, k.sign(t, "ec-1", nil, claims(w.billing)), w.billing, policy.ReasonOK},
		{"typ application/at+jwt", required, k.sign(t, "rsa-1", map[string]any{"typ": "application/at+jwt"}, claims(w.billing)), w.billing, policy.ReasonOK},
		{"within leeway after exp", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["exp"] = t0.Add(-10 * time.Second).Unix() })), w.billing, policy.ReasonOK},

		{"replayed with another certificate", required, k.sign(t, "rsa-1", nil, claims(w.billing)), w.reports, policy.ReasonTokenBindingMismatch},
		{"bound token without a certificate", required, k.sign(t, "rsa-1", nil, claims(w.billing)), nil, policy.ReasonTokenCertMissing},
		{"bound token without a certificate, optional binding", optional, k.sign(t, "rsa-1", nil, claims(w.billing)), nil, policy.ReasonTokenCertMissing},
		{"cnf missing, binding required", required, k.sign(t, "rsa-1", nil, claims(nil)), w.billing, policy.ReasonTokenUnbound},
		{"cnf missing, binding optional", optional, k.sign(t, "rsa-1", nil, claims(nil)), w.billing, policy.ReasonOK},
		{"cnf of another certificate, optional binding", optional, k.sign(t, "rsa-1", nil, claims(w.reports)), w.billing, policy.ReasonTokenBindingMismatch},
		{"cnf padded", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": thumb.String() + "="} })), w.billing, policy.ReasonTokenCNFMalformed},
		{"cnf standard alphabet", required, k.sign(t, "rsa-1", nil, func() map[string]any {
			c := claims(urlSafe)
			c["cnf"] = map[string]any{"x5t#S256": strings.NewReplacer("-", "+", "_", "/").Replace(policy.ThumbprintOf(urlSafe.DER()).String())}
			return c
		}()), urlSafe, policy.ReasonTokenCNFMalformed},
		{"cnf hex", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": thumb.Hex()} })), w.billing, policy.ReasonTokenCNFMalformed},
		{"cnf not canonical (RFC 8705 example value)", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) {
			c["cnf"] = map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
		})), w.billing, policy.ReasonTokenCNFMalformed},
		{"cnf x5t#S256 not a string", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": []string{thumb.String()}} })), w.billing, policy.ReasonTokenCNFMalformed},
		{"cnf not an object", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["cnf"] = thumb.String() })), w.billing, policy.ReasonTokenCNFMalformed},
		{"cnf x5t (SHA-1) only", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["cnf"] = map[string]any{"x5t": "BhJU_fcg8sDkvT8zOaL-U1ChXeE"} })), w.billing, policy.ReasonTokenCNFUnsupported},
		{"cnf jkt (DPoP) as Bearer, optional binding", optional, k.sign(t, "rsa-1", nil, with(func(c map[string]any) {
			c["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		})), w.billing, policy.ReasonTokenDPoPAsBearer},
		{"cnf jwk, optional binding", optional, k.sign(t, "rsa-1", nil, with(func(c map[string]any) {
			c["cnf"] = map[string]any{"jwk": map[string]any{"kty": "EC"}}
		})), w.billing, policy.ReasonTokenCNFUnsupported},

		{"alg none", required, forge(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}, claims(w.billing), func(string) []byte { return nil }), w.billing, policy.ReasonTokenAlgorithm},
		{"HS256 keyed with the RSA public key", required, forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"}, claims(w.billing), hs256(rsaPubDER)), w.billing, policy.ReasonTokenAlgorithm},
		{"unknown kid", required, k.sign(t, "rsa-9", nil, claims(w.billing)), w.billing, policy.ReasonTokenUnknownKey},
		{"signature by another key", required, newIssuerKeys(t).sign(t, "rsa-1", nil, claims(w.billing)), w.billing, policy.ReasonTokenSignature},
		{"expired", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["exp"] = t0.Add(-time.Minute).Unix() })), w.billing, policy.ReasonTokenExpired},
		{"no exp", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { delete(c, "exp") })), w.billing, policy.ReasonTokenExpired},
		{"not yet valid", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["nbf"] = t0.Add(time.Minute).Unix() })), w.billing, policy.ReasonTokenNotYetValid},
		{"wrong iss", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["iss"] = "https://evil.example" })), w.billing, policy.ReasonTokenIssuer},
		{"wrong aud", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["aud"] = []string{"https://other.example"} })), w.billing, policy.ReasonTokenAudience},
		{"wrong typ", required, k.sign(t, "rsa-1", map[string]any{"typ": "JWT"}, claims(w.billing)), w.billing, policy.ReasonTokenType},
		{"aud of the wrong type", required, k.sign(t, "rsa-1", nil, with(func(c map[string]any) { c["aud"] = 7 })), w.billing, policy.ReasonTokenMalformed},
		{"garbage", required, "a.b.c", w.billing, policy.ReasonTokenMalformed},
		{"opaque token without introspection", required, "2YotnFZFEjr1zCsicMWpAA", w.billing, policy.ReasonTokenMalformed},
		{"oversized token", required, strings.Repeat("a", 20000) + ".b.c", w.billing, policy.ReasonTokenMalformed},
		{"no token", required, "", w.billing, policy.ReasonTokenMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := policy.Input{ModeHint: "bound_token", Request: apiRequest(tc.tok)}
			if tc.cert != nil {
				in.Certificate = presented(t, tc.cert)
			}
			d := decide(tc.engine, in)
			if d.Reason != tc.want || d.Allow != (tc.want == policy.ReasonOK) {
				t.Fatalf("%s (cause %v), want %s", d.Reason, d.Cause, tc.want)
			}
			if d.Allow && (d.Subject != "user-1" || d.ClientID != "billing" || strings.Join(d.Scopes, " ") != "read write") {
				t.Errorf("allow without the token's facts: %+v", d)
			}
		})
	}
}

func TestBoundTokenDuplicateClaims(t *testing.T) {
	// Two "cnf" members: one parser might take the first, another the last.
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	e := w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", "required"))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.rsa}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "rsa-1"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(claims(w.billing))
	payload := strings.TrimSuffix(string(good), "}") + `,"cnf":{"x5t#S256":"` + policy.ThumbprintOf(w.reports.DER()).String() + `"}}`
	deep := strings.TrimSuffix(string(good), "}") + `,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	for name, p := range map[string]string{"duplicate cnf": payload, "deep nesting": deep} {
		jws, err := s.Sign([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(tok), Certificate: presented(t, w.billing)})
		if d.Reason != policy.ReasonTokenMalformed {
			t.Errorf("%s: %s (%v), want token_malformed", name, d.Reason, d.Cause)
		}
	}
}

// TestBoundTokenWithoutTokenConfig: a bound_token hint where no issuer or introspection is
// configured fails closed as token_unverifiable.
func TestBoundTokenWithoutTokenConfig(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, exampleConfig)
	d := decide(e, policy.Input{ModeHint: "bound_token", Certificate: presented(t, w.billing),
		Request: policy.Request{Path: "/api/x", Headers: map[string]string{"authorization": "Bearer abc"}}})
	if d.Reason != policy.ReasonTokenUnverifiable || d.Allow {
		t.Fatalf("%s (%v), want token_unverifiable", d.Reason, d.Cause)
	}
}

func TestBoundTokenRequestShapes(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	e := w.engine(t, tokenConfig("jwks_file: pki/as.jwks.json", "required"))
	tok := k.sign(t, "rsa-1", nil, claims(w.billing))
	for _, tc := range []struct {
		name, authz string
		want        policy.Reason
	}{
		{"lower-case scheme", "bearer " + tok, policy.ReasonOK},
		{"two Authorization headers joined by Envoy", "Bearer " + tok + ",Bearer " + tok, policy.ReasonTokenRequestInvalid},
		{"Bearer without a token", "Bearer", policy.ReasonTokenRequestInvalid},
		{"Bearer with a space inside", "Bearer ab cd", policy.ReasonTokenRequestInvalid},
		{"Basic then Bearer", "Basic Zm9vOmJhcg==, Bearer " + tok, policy.ReasonTokenRequestInvalid},
		{"Basic only", "Basic Zm9vOmJhcg==", policy.ReasonTokenMissing},
		{"a token without a scheme", tok, policy.ReasonTokenMissing},
		{"a token after a comma", "x," + tok, policy.ReasonTokenMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(e, policy.Input{ModeHint: "bound_token", Certificate: presented(t, w.billing),
				Request: policy.Request{Path: "/api/x", Headers: map[string]string{"authorization": tc.authz}}})
			if d.Reason != tc.want {
				t.Fatalf("%s (%v), want %s", d.Reason, d.Cause, tc.want)
			}
			// The cause is logged: it never holds the token, nor a piece of it.
			if d.Cause != nil && strings.Contains(d.Cause.Error(), tok[:20]) {
				t.Errorf("the cause holds the token: %v", d.Cause)
			}
		})
	}
	// A token in the query (RFC 6750 section 2.3) is not read: header only.
	d := decide(e, policy.Input{ModeHint: "bound_token", Certificate: presented(t, w.billing), Request: policy.Request{Path: "/api/x?access_token=" + tok}})
	if d.Reason != policy.ReasonTokenMissing {
		t.Errorf("query token: %s, want token_missing", d.Reason)
	}
}

func TestBoundTokenRouteOptions(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	cfg := strings.Replace(tokenConfig("jwks_file: pki/as.jwks.json", "required"), "routes:\n", `routes:
  - { path_prefix: /api/admin, mode: bound_token, scopes: [admin] }
  - { path_prefix: /api/legacy, mode: bound_token, binding: optional }
  - { path_prefix: /api/strict, mode: bound_token, require_client_match: true }
  - { path_prefix: /api/, mode: bound_token }
`, 1)
	e := w.engine(t, cfg)
	bound := k.sign(t, "rsa-1", nil, claims(w.billing))
	unbound := k.sign(t, "rsa-1", nil, claims(nil))
	wrongClient := k.sign(t, "rsa-1", nil, func() map[string]any { c := claims(w.billing); c["client_id"] = "reports"; return c }())
	for _, tc := range []struct {
		path, tok string
		want      policy.Reason
	}{
		{"/api/admin/users", bound, policy.ReasonInsufficientScope},
		{"/api/legacy/x", unbound, policy.ReasonOK},
		{"/api/other", unbound, policy.ReasonTokenUnbound},
		{"/api/strict/x", bound, policy.ReasonOK},
		{"/api/strict/x", wrongClient, policy.ReasonTokenClientMismatch},
	} {
		req := apiRequest(tc.tok)
		req.Path = tc.path
		d := decide(e, policy.Input{Request: req, Certificate: presented(t, w.billing)})
		if d.Reason != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.path, d.Reason, d.Cause, tc.want)
		}
		if tc.want == policy.ReasonInsufficientScope && strings.Join(d.RequiredScopes, " ") != "admin" {
			t.Errorf("required scopes %q", d.RequiredScopes)
		}
	}
}

// jwksServer serves a JWKS that the test can change or break.
type jwksServer struct {
	*httptest.Server
	body  atomic.Pointer[[]byte]
	down  atomic.Bool
	delay atomic.Int64
	hits  atomic.Int64
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	s := &jwksServer{}
	s.body.Store(&body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		time.Sleep(time.Duration(s.delay.Load()))
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func TestBoundTokenJWKSURI(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	srv := newJWKSServer(t, k.jwks(t, "rsa-1"))
	cfg := tokenConfig("jwks_uri: "+srv.URL+"/jwks", "required") + "jwks_fetch: {timeout: 1s, refresh_interval: 1h, min_interval: 1ns}\n"
	e := w.engine(t, cfg)
	check := func(tok string) policy.Decision {
		return decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(tok), Certificate: presented(t, w.billing)})
	}
	if d := check(k.sign(t, "rsa-1", nil, claims(w.billing))); d.Reason != policy.ReasonOK {
		t.Fatalf("first use: %s (%v)", d.Reason, d.Cause)
	}
	// The endpoint goes down: the cached keys stay in use.
	srv.down.Store(true)
	if d := check(k.sign(t, "rsa-1", nil, claims(w.billing))); d.Reason != policy.ReasonOK {
		t.Fatalf("with the JWKS endpoint down: %s (%v)", d.Reason, d.Cause)
	}
	// An unknown kid forces a refresh, which fails: unknown key, not an allow.
	if d := check(k.sign(t, "ec-1", nil, claims(w.billing))); d.Reason != policy.ReasonTokenUnknownKey {
		t.Fatalf("unknown kid while down: %s (%v)", d.Reason, d.Cause)
	}
	// The issuer rotates in a new key: a token with the new kid triggers a refetch.
	srv.down.Store(false)
	rotated := k.jwks(t, "ec-1")
	srv.body.Store(&rotated)
	if d := check(k.sign(t, "ec-1", nil, claims(w.billing))); d.Reason != policy.ReasonOK {
		t.Fatalf("after rotation: %s (%v)", d.Reason, d.Cause)
	}
}

func TestBoundTokenJWKSNeverLoaded(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	srv := newJWKSServer(t, k.jwks(t))
	srv.down.Store(true)
	e := w.engine(t, tokenConfig("jwks_uri: "+srv.URL+"/jwks", "required"))
	d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(k.sign(t, "rsa-1", nil, claims(w.billing))), Certificate: presented(t, w.billing)})
	if d.Reason != policy.ReasonTokenUnverifiable || d.Allow {
		t.Fatalf("%s (%v), want token_unverifiable", d.Reason, d.Cause)
	}
}

func TestBoundTokenDiscovery(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, `{"issuer":%q,"jwks_uri":%q}`, srv.URL, srv.URL+"/keys")
	})
	mux.HandleFunc("/keys", func(rw http.ResponseWriter, r *http.Request) { rw.Write(k.jwks(t)) })
	cfg := strings.ReplaceAll(tokenConfig("discovery: true", "required"), testIssuer, srv.URL)
	e := w.engine(t, cfg)
	c := claims(w.billing)
	c["iss"] = srv.URL
	d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(k.sign(t, "ec-1", nil, c)), Certificate: presented(t, w.billing)})
	if d.Reason != policy.ReasonOK {
		t.Fatalf("%s (%v)", d.Reason, d.Cause)
	}
}

// TestRFC8705Vectors runs the ES256 tokens of shared/vectors/rfc8705-vectors.md section E,
// signed elsewhere, against certificate C.01.
func TestRFC8705Vectors(t *testing.T) {
	w := newWorld(t)
	w.write(t, "pki/vec.jwks.json", []byte(`{"keys":[{"alg":"ES256","crv":"P-256","kid":"test-es256","kty":"EC","use":"sig","x":"Z1A63M3-BXfV3jqlzMMgchmFlPcMTAPAMcWtn1VcYCY","y":"0OG-1rtqppwOoPMt6O5PNazyS15UjLe3ci6ihrQsNFU"}]}`))
	cfg := exampleConfig + `tokens:
  issuers:
    - issuer: https://as.example.test
      jwks_file: pki/vec.jwks.json
      audiences: [https://rs.example.test]
`
	e := w.engine(t, cfg)
	der, _ := base64.StdEncoding.DecodeString(c01)
	c01Presented, err := policy.ParsePresented(der, nil)
	if err != nil {
		t.Fatal(err)
	}
	const (
		bound01    = "eyJhbGciOiJFUzI1NiIsImtpZCI6InRlc3QtZXMyNTYiLCJ0eXAiOiJhdCtqd3QifQ.eyJhdWQiOiJodHRwczovL3JzLmV4YW1wbGUudGVzdCIsImNsaWVudF9pZCI6ImNsaWVudC0xIiwiY25mIjp7Ing1dCNTMjU2IjoiRVVCbE1aSlozMEhMbmdCRkVMcDJxc1lFclNNRnlGbC03dWdaY0VjRktQdyJ9LCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NzIyNTYwMCwiaXNzIjoiaHR0cHM6Ly9hcy5leGFtcGxlLnRlc3QiLCJqdGkiOiJ2ZWMtRVVCbCIsInN1YiI6ImNsaWVudC0xIn0.oKRSkt-oTx7zLqsRDhnRpe6Ut489YSUhfjiYghKxMnIfLEThKRZicjet5DZUYqtM1RdPrCoozPvw4tj8SizlFw"
		rfcExample = "eyJhbGciOiJFUzI1NiIsImtpZCI6InRlc3QtZXMyNTYiLCJ0eXAiOiJhdCtqd3QifQ.eyJhdWQiOiJodHRwczovL3JzLmV4YW1wbGUudGVzdCIsImNsaWVudF9pZCI6ImNsaWVudC0xIiwiY25mIjp7Ing1dCNTMjU2IjoiYndjSzBlc2MzQUNDM0RCMlk1X2xFU3NYRThvOWx0YzA1Tzg5amROLWRnMiJ9LCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NzIyNTYwMCwiaXNzIjoiaHR0cHM6Ly9hcy5leGFtcGxlLnRlc3QiLCJqdGkiOiJ2ZWMtYndjSyIsInN1YiI6ImNsaWVudC0xIn0.p3N5ybe5py56Q1UgM7IdidVAaHyO-cgruhBsrYdcKvh9bvPRSyNY2Clm4m4vW62rg9odz5864Yagr5pzROP6iw"
		unbound    = "eyJhbGciOiJFUzI1NiIsImtpZCI6InRlc3QtZXMyNTYiLCJ0eXAiOiJhdCtqd3QifQ.eyJhdWQiOiJodHRwczovL3JzLmV4YW1wbGUudGVzdCIsImNsaWVudF9pZCI6ImNsaWVudC0xIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NjcyMjU2MDAsImlzcyI6Imh0dHBzOi8vYXMuZXhhbXBsZS50ZXN0IiwianRpIjoidmVjLW5vbmUiLCJzdWIiOiJjbGllbnQtMSJ9.vJX9BN1KYsIHfKVfKCYMWp60QBd7GSNhafebYVCg4rgIkHfX9vgwKTw31iW67BfigVXUfGo4yC7S54yuKd64AA"
	)
	for _, tc := range []struct {
		name string
		tok  string
		cert *policy.Presented
		want policy.Reason
	}{
		{"JWT_BOUND_01 with C.01", bound01, c01Presented, policy.ReasonOK},
		{"JWT_BOUND_01 with another certificate", bound01, presented(t, w.billing), policy.ReasonTokenBindingMismatch},
		{"JWT_BOUND_01 without a certificate", bound01, nil, policy.ReasonTokenCertMissing},
		{"JWT_BOUND_RFC_EXAMPLE", rfcExample, c01Presented, policy.ReasonTokenCNFMalformed},
		{"JWT_UNBOUND, binding required", unbound, c01Presented, policy.ReasonTokenUnbound},
	} {
		d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(tc.tok), Certificate: tc.cert})
		if d.Reason != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, d.Reason, d.Cause, tc.want)
		}
	}
}

// TestRemovedKeyStopsWorking: a JWT verified (and cached) before its signing key left the
// issuer's key set is refused once the set is refreshed, not allowed until its cache entry
// ends (issue 12, defect 4).
func TestRemovedKeyStopsWorking(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	srv := newJWKSServer(t, k.jwks(t, "rsa-1"))
	cfg := tokenConfig("jwks_uri: "+srv.URL+"/jwks", "required") + "jwks_fetch: {timeout: 1s, refresh_interval: 1h, min_interval: 1ns}\n"
	var events []string
	e := engineAt(t, w, cfg, &clock{now: t0}, &events)
	check := func(tok string) policy.Decision {
		return decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(tok), Certificate: presented(t, w.billing)})
	}
	old := k.sign(t, "rsa-1", nil, claims(w.billing))
	// Three times: the second verification is admitted to the cache, the third answered by it.
	for range 3 {
		if d := check(old); d.Reason != policy.ReasonOK {
			t.Fatalf("before the rotation: %s (%v)", d.Reason, d.Cause)
		}
	}
	if count(events, "tokens:hit") != 1 {
		t.Fatalf("the old key's token is not cached: events %v", events)
	}
	// The issuer replaces rsa-1 by ec-1; a token with the new kid makes certbind refetch.
	rotated := k.jwks(t, "ec-1")
	srv.body.Store(&rotated)
	if d := check(k.sign(t, "ec-1", nil, claims(w.billing))); d.Reason != policy.ReasonOK {
		t.Fatalf("new key: %s (%v)", d.Reason, d.Cause)
	}
	if d := check(old); d.Reason != policy.ReasonTokenUnknownKey {
		t.Fatalf("a token of the removed key: %s (%v), want token_unknown_key", d.Reason, d.Cause)
	}
}

// TestKeyFetchesWithPrivateCA: an authorization server on a private CA serves its keys to
// certbind when the issuer (or the self-signed client's jwks_uri) names that CA in tls_ca; the
// system roots alone refuse it, and the CA file is one of the configuration's files (reloaded
// like every other). Issue 12, defect 3.
func TestKeyFetchesWithPrivateCA(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			fmt.Fprintf(rw, `{"issuer":%q,"jwks_uri":%q}`, srv.URL, srv.URL+"/keys")
		case "/keys":
			rw.Write(k.jwks(t))
		case "/partner.jwks":
			rw.Write(jwksFor(t, w.partner))
		default:
			http.NotFound(rw, r)
		}
	}))
	t.Cleanup(srv.Close)
	ca := w.write(t, "pki/as-tls-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	c := claims(w.billing)
	c["iss"] = srv.URL
	tok := k.sign(t, "ec-1", nil, c)
	issuer := func(keys, tlsCA string) string {
		return exampleConfig + "tokens:\n  issuers:\n    - {issuer: " + srv.URL + ", " + keys + ", audiences: [" + testAudience + "]" + tlsCA + "}\n"
	}
	for _, tc := range []struct {
		name, cfg string
		want      policy.Reason
	}{
		{"jwks_uri with tls_ca", issuer("jwks_uri: "+srv.URL+"/keys", ", tls_ca: pki/as-tls-ca.pem"), policy.ReasonOK},
		{"discovery with tls_ca", issuer("discovery: true", ", tls_ca: pki/as-tls-ca.pem"), policy.ReasonOK},
		{"jwks_uri without tls_ca", issuer("jwks_uri: "+srv.URL+"/keys", ""), policy.ReasonTokenUnverifiable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.load(t, tc.cfg)
			e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return t0 }})
			d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(tok), Certificate: presented(t, w.billing)})
			if d.Reason != tc.want {
				t.Fatalf("%s (%v), want %s", d.Reason, d.Cause, tc.want)
			}
			if tc.want == policy.ReasonOK && !slices.Contains(cfg.Files(), ca) {
				t.Errorf("files %q do not include the CA file, so a change would not reload", cfg.Files())
			}
		})
	}
	t.Run("self-signed client's jwks_uri with jwks_uri_tls_ca", func(t *testing.T) {
		e := w.engine(t, "clients:\n  - {client_id: partner, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_uri: \""+srv.URL+"/partner.jwks\", jwks_uri_tls_ca: pki/as-tls-ca.pem}\n")
		if d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("partner"), Certificate: presented(t, w.partner)}); d.Reason != policy.ReasonOK {
			t.Fatalf("%s (%v)", d.Reason, d.Cause)
		}
	})
	for _, bad := range []struct{ yaml, want string }{
		{"tokens:\n  issuers: [{issuer: https://as, jwks_file: pki/partner.jwks.json, audiences: [a], tls_ca: pki/as-tls-ca.pem}]\n", "tokens.issuers[0]: tls_ca, tls_cert and tls_key apply to jwks_uri and discovery fetches"},
		{"tokens:\n  issuers: [{issuer: https://as, jwks_uri: https://as/keys, audiences: [a], tls_cert: pki/as-tls-ca.pem}]\n", "tokens.issuers[0]: tls_cert and tls_key go together"},
		{"tokens:\n  issuers: [{issuer: https://as, jwks_uri: https://as/keys, audiences: [a], tls_ca: pki/none.pem}]\n", "tokens.issuers[0].tls_ca:"},
		{"clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_file: pki/partner.jwks.json, jwks_uri_tls_ca: pki/as-tls-ca.pem}\n", "clients[0]: jwks_uri_tls_ca, jwks_uri_tls_cert and jwks_uri_tls_key apply to jwks_uri"},
	} {
		p := w.write(t, "bad.yaml", []byte(bad.yaml))
		if _, err := policy.LoadConfig(p, policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("error %v, want %q", err, bad.want)
		}
	}
}
