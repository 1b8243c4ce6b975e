package extauthz_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

type signer struct{ key *ecdsa.PrivateKey }

func newSigner(t testing.TB, f *fixture) *signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	f.write(t, "as.jwks.json", set)
	return &signer{key: k}
}

func (s *signer) token(t testing.TB, bound *pki.Cert, scope string) string {
	t.Helper()
	c := map[string]any{"iss": "https://as.example.org", "aud": "https://api.example.org", "sub": "user-7",
		"client_id": "billing", "scope": scope, "exp": t0.Add(time.Hour).Unix()}
	if bound != nil {
		c["cnf"] = map[string]string{"x5t#S256": policy.ThumbprintOf(bound.DER()).String()}
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(c)
	jws, err := sg.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

const tokensConfig = `tokens:
  realm: api
  issuers:
    - issuer: https://as.example.org
      jwks_file: as.jwks.json
      audiences: [https://api.example.org]
`

func TestCheckBoundToken(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t, f)
	cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/admin, mode: bound_token, scopes: [admin]}\n  - {path_prefix: /api/, mode: bound_token}\n", 1) + tokensConfig
	client, _ := f.start(t, cfg)
	call := func(tok, path string, cert *pki.Cert) (*extauthzResp, error) {
		r := req{path: path, headers: map[string]string{}}
		if tok != "" {
			r.headers["authorization"] = "Bearer " + tok
		}
		if cert != nil {
			r.xfccHeader = envoyXFCC(cert)
		}
		resp, err := client.Check(context.Background(), r.build())
		if err != nil {
			return nil, err
		}
		out := &extauthzResp{code: resp.GetStatus().GetCode(), reason: resp.GetStatus().GetMessage()}
		if ok := resp.GetOkResponse(); ok != nil {
			out.upstream = headerMap(ok.GetHeaders())
			out.removed = ok.GetHeadersToRemove()
		} else {
			out.status = int(resp.GetDeniedResponse().GetStatus().GetCode())
			out.headers = headerMap(resp.GetDeniedResponse().GetHeaders())
			out.body = resp.GetDeniedResponse().GetBody()
		}
		return out, nil
	}

	got, err := call(s.token(t, f.billing, "read write"), "/api/things", f.billing)
	if err != nil || got.code != 0 {
		t.Fatalf("valid bound token: %+v %v", got, err)
	}
	want := map[string]string{extauthz.HeaderSubject: "user-7", extauthz.HeaderClientID: "billing", extauthz.HeaderScope: "read write",
		extauthz.HeaderThumbprint: policy.ThumbprintOf(f.billing.DER()).String()}
	for k, v := range want {
		if got.upstream[k] != v {
			t.Errorf("upstream %s = %q, want %q", k, got.upstream[k], v)
		}
	}
	if strings.Contains(strings.Join(got.removed, ","), "authorization") {
		t.Errorf("authorization removed though forward_authorization defaults to true")
	}

	for _, tc := range []struct {
		name, tok, path string
		cert            *pki.Cert
		status          int
		challenge       string
	}{
		{"replayed with another certificate", s.token(t, f.billing, "read"), "/api/things", f.other, 401,
			`Bearer realm="api", error="invalid_token", error_description="the access token is bound to a different client certificate"`},
		{"no token", "", "/api/things", f.billing, 401, `Bearer realm="api"`},
		{"insufficient scope", s.token(t, f.billing, "read"), "/api/admin/x", f.billing, 403,
			`Bearer realm="api", error="insufficient_scope", error_description="the access token lacks the scope this resource requires", scope="admin"`},
		{"bound token, no certificate", s.token(t, f.billing, "read"), "/api/things", nil, 401,
			`Bearer realm="api", error="invalid_token", error_description="the access token is certificate-bound but no client certificate was presented"`},
		{"malformed Authorization", "a b", "/api/things", f.billing, 400,
			`Bearer realm="api", error="invalid_request", error_description="the Authorization header is malformed or repeated"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(tc.tok, tc.path, tc.cert)
			if err != nil {
				t.Fatal(err)
			}
			if got.code == 0 || got.status != tc.status || got.headers["www-authenticate"] != tc.challenge {
				t.Fatalf("got %d %q (%s), want %d %q", got.status, got.headers["www-authenticate"], got.reason, tc.status, tc.challenge)
			}
			if tc.status == 401 && tc.tok == "" && got.body != "" {
				t.Errorf("no-token challenge carries a body: %s", got.body)
			}
		})
	}
}

func TestCheckBoundTokenAuthorizationNotForwarded(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t, f)
	cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1) +
		strings.Replace(tokensConfig, "  realm: api\n", "  realm: api\n  forward_authorization: false\n", 1)
	client, _ := f.start(t, cfg)
	r := req{path: "/api/x", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": "Bearer " + s.token(t, f.billing, "")}}
	resp, err := client.Check(context.Background(), r.build())
	if err != nil {
		t.Fatal(err)
	}
	rm := resp.GetOkResponse().GetHeadersToRemove()
	if !slices.Contains(rm, "authorization") || !slices.Contains(rm, "dpop") {
		t.Fatalf("headers_to_remove %v lacks authorization or dpop", rm)
	}
	if _, ok := headerMap(resp.GetOkResponse().GetHeaders())[extauthz.HeaderScope]; ok {
		t.Errorf("empty scope set as a header")
	}
}

type extauthzResp struct {
	code              int32
	reason            string
	status            int
	headers, upstream map[string]string
	removed           []string
	body              string
}
