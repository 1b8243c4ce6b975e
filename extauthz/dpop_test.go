package extauthz_test

import (
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/dpoptest"
)

// TestDPoPDenials: RFC 9449 section 7.1 challenges: a proof failure is a DPoP challenge with
// invalid_dpop_proof and algs whatever scheme the request used, a token failure is challenged
// in the request's scheme, a request without a token in every scheme the resource accepts, and
// use_dpop_nonce carries the nonce in DPoP-Nonce.
func TestDPoPDenials(t *testing.T) {
	rs := policy.Response{Realm: "api", DPoPAlgorithms: "ES256 EdDSA"}
	bt := policy.ModeBoundToken
	for _, tc := range []struct {
		name      string
		d         policy.Decision
		status    int
		challenge string
		oauth     string
		nonce     string
	}{
		{"proof replayed", policy.Decision{Mode: bt, Reason: policy.ReasonDPoPReplay, Challenge: policy.SchemeDPoP}, 401,
			`DPoP realm="api", error="invalid_dpop_proof", error_description="the DPoP proof has been used before", algs="ES256 EdDSA"`, "invalid_dpop_proof", ""},
		{"proof missing", policy.Decision{Mode: bt, Reason: policy.ReasonDPoPProofMissing, Challenge: policy.SchemeDPoP}, 401,
			`DPoP realm="api", error="invalid_dpop_proof", error_description="exactly one DPoP proof is required", algs="ES256 EdDSA"`, "invalid_dpop_proof", ""},
		{"token expired, DPoP scheme", policy.Decision{Mode: bt, Reason: policy.ReasonTokenExpired, Challenge: policy.SchemeDPoP}, 401,
			`DPoP realm="api", error="invalid_token", error_description="the access token has expired", algs="ES256 EdDSA"`, "invalid_token", ""},
		{"token expired, Bearer scheme", policy.Decision{Mode: bt, Reason: policy.ReasonTokenExpired, Challenge: policy.SchemeBearer}, 401,
			`Bearer realm="api", error="invalid_token", error_description="the access token has expired"`, "invalid_token", ""},
		{"DPoP-bound token as Bearer", policy.Decision{Mode: bt, Reason: policy.ReasonTokenDPoPAsBearer, Challenge: policy.SchemeDPoP}, 401,
			`DPoP realm="api", error="invalid_token", error_description="the access token is DPoP-bound and must be sent with the DPoP scheme", algs="ES256 EdDSA"`, "invalid_token", ""},
		{"no token, either binding", policy.Decision{Mode: bt, Reason: policy.ReasonTokenMissing, Challenge: policy.SchemeBearer | policy.SchemeDPoP}, 401,
			`Bearer realm="api", DPoP realm="api", algs="ES256 EdDSA"`, "", ""},
		{"no token, dpop binding, nonces on", policy.Decision{Mode: bt, Reason: policy.ReasonTokenMissing, Challenge: policy.SchemeDPoP, DPoPNonce: "n1"}, 401,
			`DPoP realm="api", algs="ES256 EdDSA"`, "", "n1"},
		{"nonce required", policy.Decision{Mode: bt, Reason: policy.ReasonDPoPNonce, Challenge: policy.SchemeDPoP, DPoPNonce: "n2"}, 401,
			`DPoP realm="api", error="use_dpop_nonce", error_description="the DPoP proof must carry the server's current nonce", algs="ES256 EdDSA"`, "use_dpop_nonce", "n2"},
		{"insufficient scope, DPoP", policy.Decision{Mode: bt, Reason: policy.ReasonInsufficientScope, Challenge: policy.SchemeDPoP, RequiredScopes: []string{"admin"}}, 403,
			`DPoP realm="api", error="insufficient_scope", error_description="the access token lacks the scope this resource requires", scope="admin", algs="ES256 EdDSA"`, "insufficient_scope", ""},
		{"replay store down", policy.Decision{Mode: bt, Reason: policy.ReasonDPoPReplayDown, Challenge: policy.SchemeDPoP}, 503, "", "temporarily_unavailable", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			den := extauthz.Denial(tc.d, rs)
			got := map[string]string{}
			for _, h := range den.Headers {
				if _, dup := got[h.Name]; dup {
					t.Errorf("header %s twice", h.Name)
				}
				got[h.Name] = h.Value
			}
			if den.Status != tc.status || got["www-authenticate"] != tc.challenge || den.OAuthError != tc.oauth || got[extauthz.HeaderDPoPNonce] != tc.nonce {
				t.Errorf("%d %q %q nonce %q\nwant %d %q %q nonce %q", den.Status, got["www-authenticate"], den.OAuthError, got[extauthz.HeaderDPoPNonce],
					tc.status, tc.challenge, tc.oauth, tc.nonce)
			}
			// The gRPC rendering carries the same headers, each overwriting a client copy.
			resp := extauthz.Render(tc.d, rs)
			n := 0
			for _, h := range resp.GetDeniedResponse().GetHeaders() {
				if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
					t.Errorf("%s appended", h.GetHeader().GetKey())
				}
				if got[h.GetHeader().GetKey()] != h.GetHeader().GetValue() {
					t.Errorf("gRPC %s %q, HTTP %q", h.GetHeader().GetKey(), h.GetHeader().GetValue(), got[h.GetHeader().GetKey()])
				}
				n++
			}
			if n != len(got) {
				t.Errorf("gRPC sends %d headers, HTTP %d", n, len(got))
			}
		})
	}
}

// TestDPoPAllow: an allowed DPoP request sends the key thumbprint upstream and, with nonces
// on, a fresh nonce to the client (response_headers_to_add), never upstream.
func TestDPoPAllow(t *testing.T) {
	d := policy.Decision{Allow: true, Reason: policy.ReasonOK, Mode: policy.ModeBoundToken, DPoPKey: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", DPoPNonce: "n3", Challenge: policy.SchemeDPoP}
	ok := extauthz.Render(d, policy.Response{ForwardAuthorization: true}).GetOkResponse()
	up := map[string]string{}
	for _, h := range ok.GetHeaders() {
		up[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if up[extauthz.HeaderDPoPKey] != d.DPoPKey || up[extauthz.HeaderDPoPNonce] != "" {
		t.Errorf("upstream headers %v", up)
	}
	rh := ok.GetResponseHeadersToAdd()
	if len(rh) != 1 || rh[0].GetHeader().GetKey() != extauthz.HeaderDPoPNonce || rh[0].GetHeader().GetValue() != "n3" ||
		rh[0].GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("response_headers_to_add %v", rh)
	}
	// A Bearer allow removes any client-sent key thumbprint.
	ok = extauthz.Render(policy.Decision{Allow: true, Reason: policy.ReasonOK, Mode: policy.ModeBoundToken}, policy.Response{ForwardAuthorization: true}).GetOkResponse()
	found := false
	for _, h := range ok.GetHeadersToRemove() {
		found = found || h == extauthz.HeaderDPoPKey
	}
	if !found || len(ok.GetResponseHeadersToAdd()) != 0 {
		t.Errorf("Bearer allow: remove %v, to the client %v", ok.GetHeadersToRemove(), ok.GetResponseHeadersToAdd())
	}
}

// TestDPoPOverTransports: a DPoP-bound token with its proof passes over gRPC (scheme and
// :authority from Envoy) and over the HTTP endpoint (https and Host by default), a proof is good
// once across both, and a proof for another URI is refused with its reason.
func TestDPoPOverTransports(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t, f)
	tr := f.transports(t, strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1)+tokensConfig+"      binding: either\n")
	h := dpoptest.New(t)
	jkt := h.JKT
	tok := s.sign(t, map[string]any{"iss": "https://as.example.org", "aud": "https://api.example.org", "sub": "user-7",
		"client_id": "spa", "exp": t0.Add(time.Hour).Unix(), "cnf": map[string]any{"jkt": jkt}})
	proof := func(htu string) string { return h.Proof(t, h.Claims("GET", htu, tok, t0)) }
	call := func(via func(*testing.T, attempt) outcome, p string) outcome {
		return via(t, attempt{path: "/api/x?y=1", headers: map[string]string{"authorization": "DPoP " + tok, "dpop": p}})
	}
	for name, via := range map[string]func(*testing.T, attempt) outcome{"grpc": tr.viaGRPC, "http": tr.viaHTTP} {
		if got := call(via, proof("https://api.example.org/api/x")); got.reason != policy.ReasonOK || got.upstream[extauthz.HeaderDPoPKey] != jkt {
			t.Errorf("%s: %s %d, upstream %v", name, got.reason, got.status, got.upstream)
		}
		p := proof("https://api.example.org/api/y")
		got := call(via, p)
		if got.reason != policy.ReasonDPoPURI || got.status != 401 {
			t.Errorf("%s, another path: %s %d", name, got.reason, got.status)
		}
		if got.log == "" || strings.Contains(got.log, tok) || strings.Contains(got.log, p) {
			t.Errorf("%s: log line %q is missing or holds the token or the proof", name, got.log)
		}
	}
	p := proof("https://api.example.org/api/x")
	if got := call(tr.viaGRPC, p); got.reason != policy.ReasonOK {
		t.Fatalf("first use over gRPC: %s", got.reason)
	}
	if got := call(tr.viaHTTP, p); got.reason != policy.ReasonDPoPReplay || got.status != 401 {
		t.Errorf("the same proof over HTTP: %s %d, want dpop_proof_replayed 401", got.reason, got.status)
	}
}
