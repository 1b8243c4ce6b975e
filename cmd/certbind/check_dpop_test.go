package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/testenv/dpoptest"
)

// sign makes a compact JWS of claims with key, with extra header options.
func sign(t *testing.T, key *ecdsa.PrivateKey, opts *jose.SignerOptions, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// TestCheckDPoP: certbind check --dpop PROOF --method --url decides a DPoP-bound token as serve
// would, and names the proof's key.
func TestCheckDPoP(t *testing.T) {
	c := newCLI(t)
	as, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	holder := dpoptest.New(t)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &as.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	c.write(t, "as.jwks.json", set)
	c.write(t, "dpop.yaml", []byte(`trust_anchors: [ca.pem]
tokens:
  issuers:
    - { issuer: "https://as.example.org", jwks_file: as.jwks.json, audiences: [api], binding: dpop }
`))
	jkt := holder.JKT
	now := time.Now()
	tok := sign(t, as, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"), map[string]any{
		"iss": "https://as.example.org", "aud": "api", "sub": "user-1", "client_id": "spa",
		"exp": now.Add(time.Hour).Unix(), "cnf": map[string]any{"jkt": jkt}})
	c.write(t, "token", []byte(tok+"\n"))
	proof := func(htm, htu string) string { return holder.Proof(t, holder.Claims(htm, htu, tok, now)) }
	args := func(extra ...string) []string {
		return append([]string{"check", "--config", c.path("dpop.yaml"), "--token-file", c.path("token")}, extra...)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		inOut string
	}{
		{"a valid proof", args("--dpop", proof("GET", "https://api.example.org:8443/orders"), "--method", "GET", "--url", "https://api.example.org:8443/orders?page=2"), 0, "dpop: key jkt " + jkt},
		{"the proof for another method", args("--dpop", proof("POST", "https://api.example.org:8443/orders"), "--method", "GET", "--url", "https://api.example.org:8443/orders"), 1, "DENY  reason=dpop_proof_method"},
		{"the proof for another URL", args("--dpop", proof("GET", "https://api.example.org/orders"), "--method", "GET", "--url", "https://api.example.org:8443/orders"), 1, "DENY  reason=dpop_proof_uri"},
		{"no proof", args("--method", "GET", "--url", "https://api.example.org/orders"), 1, "DENY  reason=token_dpop_as_bearer"},
		{"--dpop without a token", []string{"check", "--config", c.path("dpop.yaml"), "--dpop", "x"}, 2, ""},
		{"--url not absolute", args("--url", "/orders"), 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.inOut) || strings.Contains(out+errs, tok) {
				t.Fatalf("exit %d, want %d (%q)\nstdout: %s\nstderr: %s", code, tc.code, tc.inOut, out, errs)
			}
		})
	}
}
