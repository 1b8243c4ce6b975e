package policy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
)

// introspectionServer is an RFC 7662 endpoint over a fixed table of tokens.
type introspectionServer struct {
	*httptest.Server
	calls atomic.Int64
	mode  atomic.Value // "", "down", "slow", "garbage"
}

func newIntrospectionServer(t testing.TB, answers map[string]string) *introspectionServer {
	s := &introspectionServer{}
	s.mode.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		switch s.mode.Load() {
		case "down":
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		case "slow":
			time.Sleep(2 * time.Second)
		case "garbage":
			fmt.Fprint(w, "<html>")
			return
		case "refuses":
			// oidc-provider's answer for a token it does not introspect (a JWT of another issuer)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"unsupported_token_type","error_description":"unsupported token type"}`)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "certbind" || secret != "s3cret" {
			http.Error(w, "client authentication failed", http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		a, ok := answers[r.PostForm.Get("token")]
		if !ok {
			a = `{"active":false}`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, a)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestBoundTokenIntrospection(t *testing.T) {
	w := newWorld(t)
	x5t := policy.ThumbprintOf(w.billing.DER()).String()
	exp := t0.Add(time.Hour).Unix()
	srv := newIntrospectionServer(t, map[string]string{
		"bound":     fmt.Sprintf(`{"active":true,"client_id":"billing","sub":"user-1","scope":"read","exp":%d,"cnf":{"x5t#S256":%q}}`, exp, x5t),
		"unbound":   fmt.Sprintf(`{"active":true,"client_id":"billing","exp":%d}`, exp),
		"expired":   fmt.Sprintf(`{"active":true,"client_id":"billing","exp":%d,"cnf":{"x5t#S256":%q}}`, t0.Add(-time.Hour).Unix(), x5t),
		"active-no": `{"active":"yes"}`,
		"dup":       fmt.Sprintf(`{"active":true,"cnf":{"x5t#S256":%q},"cnf":{"x5t#S256":"x"}}`, x5t),
	})
	e := w.engine(t, exampleConfig+`tokens:
  introspection:
    endpoint: `+srv.URL+`
    client_id: certbind
    client_secret: s3cret
    timeout: 300ms
    cache_ttl: 1m
`)
	check := func(tok string) policy.Decision {
		return decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(tok), Certificate: presented(t, w.billing)})
	}
	for _, tc := range []struct {
		tok  string
		want policy.Reason
	}{
		{"bound", policy.ReasonOK},
		{"unbound", policy.ReasonTokenUnbound},
		{"expired", policy.ReasonTokenExpired},
		{"unknown", policy.ReasonTokenInactive},
		{"active-no", policy.ReasonTokenUnverifiable},
		{"dup", policy.ReasonTokenUnverifiable},
	} {
		if d := check(tc.tok); d.Reason != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.tok, d.Reason, d.Cause, tc.want)
		}
	}
	// Answers are cached by the token's hash: asking again does not call the endpoint.
	before := srv.calls.Load()
	if d := check("bound"); d.Reason != policy.ReasonOK || srv.calls.Load() != before {
		t.Errorf("cached answer: %s, %d new calls", d.Reason, srv.calls.Load()-before)
	}
	// A cached allow still checks the binding against this request's certificate.
	d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest("bound"), Certificate: presented(t, w.reports)})
	if d.Reason != policy.ReasonTokenBindingMismatch {
		t.Errorf("cached token with another certificate: %s", d.Reason)
	}

	// Endpoint failures fail closed and are never cached.
	for _, mode := range []string{"down", "garbage", "slow"} {
		srv.mode.Store(mode)
		start := time.Now()
		if d := check("fresh-" + mode); d.Reason != policy.ReasonTokenUnverifiable || d.Allow {
			t.Errorf("endpoint %s: %s (%v)", mode, d.Reason, d.Cause)
		}
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("endpoint %s: the check took %s, beyond the 300ms timeout", mode, took)
		}
	}
	srv.mode.Store("")
	calls := srv.calls.Load()
	if d := check("fresh-down"); d.Reason != policy.ReasonTokenInactive || srv.calls.Load() == calls {
		t.Errorf("after recovery: %s; failure must not have been cached", d.Reason)
	}

	// An error answer about the token is the token's problem (401 invalid_token), not an
	// outage, and it is kept like an inactive answer.
	srv.mode.Store("refuses")
	calls = srv.calls.Load()
	for range 2 {
		if d := check("junk"); d.Reason != policy.ReasonTokenRejected || d.Allow {
			t.Errorf("refused token: %s (%v), want token_rejected", d.Reason, d.Cause)
		}
	}
	if n := srv.calls.Load() - calls; n != 1 {
		t.Errorf("%d endpoint calls for one refused token, want 1", n)
	}
}

func TestIntrospectionCacheNeverOutlivesExp(t *testing.T) {
	w := newWorld(t)
	x5t := policy.ThumbprintOf(w.billing.DER()).String()
	srv := newIntrospectionServer(t, map[string]string{
		"short": fmt.Sprintf(`{"active":true,"exp":%d,"cnf":{"x5t#S256":%q}}`, t0.Add(30*time.Second).Unix(), x5t),
	})
	now := t0
	p := w.write(t, "certbind.yaml", []byte(exampleConfig+"tokens:\n  introspection: {endpoint: "+srv.URL+", client_id: certbind, client_secret: s3cret, cache_ttl: 10m}\n"))
	cfg, err := policy.LoadConfig(p, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return now }})
	in := policy.Input{ModeHint: "bound_token", Request: apiRequest("short"), Certificate: presented(t, w.billing)}
	if d := decide(e, in); d.Reason != policy.ReasonOK {
		t.Fatalf("%s (%v)", d.Reason, d.Cause)
	}
	now = t0.Add(2 * time.Minute) // past exp and leeway, well within cache_ttl
	if d := decide(e, in); d.Reason != policy.ReasonTokenExpired {
		t.Fatalf("after exp: %s, want token_expired", d.Reason)
	}
}

func TestTokenConfigErrors(t *testing.T) {
	w := newWorld(t)
	// A key set the operator wrote is held to every key, unlike a fetched one (jwks.Parse
	// skips keys of unsupported types): such a key in it can only be a mistake.
	mixed := strings.Replace(string(jwksFor(t, w.partner)), `"keys":[`, `"keys":[{"kty":"XYZ","kid":"pq"},`, 1)
	if mixed == string(jwksFor(t, w.partner)) {
		t.Fatal("could not add a key to the set")
	}
	w.write(t, "pki/mixed.jwks.json", []byte(mixed))
	for _, tc := range []struct{ name, tokens, want string }{
		{"HMAC algorithm", "  issuers: [{issuer: https://as, jwks_file: pki/ca.pem, audiences: [a], algorithms: [HS256]}]\n", `tokens.issuers[0].algorithms[0]: "HS256"`},
		{"none algorithm", "  issuers: [{issuer: https://as, jwks_uri: https://as/jwks, audiences: [a], algorithms: [none]}]\n", `tokens.issuers[0].algorithms[0]: "none"`},
		{"no audience", "  issuers: [{issuer: https://as, jwks_uri: https://as/jwks}]\n", "tokens.issuers[0].audiences: at least one audience"},
		{"two key sources", "  issuers: [{issuer: https://as, jwks_uri: https://as/jwks, discovery: true, audiences: [a]}]\n", "tokens.issuers[0]: needs exactly one of jwks, jwks_file, jwks_uri, discovery; found 2"},
		{"bad binding", "  issuers: [{issuer: https://as, jwks_uri: https://as/jwks, audiences: [a], binding: maybe}]\n", `tokens.issuers[0].binding: "maybe"`},
		{"unsupported key in a jwks_file", "  issuers: [{issuer: https://as, jwks_file: pki/mixed.jwks.json, audiences: [a]}]\n", `tokens.issuers[0].jwks_file: keys[0]: key type "XYZ" (crv "") not supported`},
		{"issuer not a URL", "  issuers: [{issuer: as, jwks_uri: https://as/jwks, audiences: [a]}]\n", `tokens.issuers[0].issuer: "as" is not an issuer URL`},
		{"introspection without client auth", "  introspection: {endpoint: https://as/introspect}\n", "tokens.introspection: configure client authentication"},
		{"introspection secret missing", "  introspection: {endpoint: https://as/introspect, client_id: x}\n", "tokens.introspection.client_secret: missing"},
		{"introspection over mutual TLS without client_id", "  introspection: {endpoint: https://as/introspect, tls_cert: pki/c.pem, tls_key: pki/k.pem}\n", "tokens.introspection.client_id: missing: with mutual TLS"},
		{"realm with a quote", "  realm: 'a\"b'\n  issuers: [{issuer: https://as, jwks_uri: https://as/jwks, audiences: [a]}]\n", "tokens.realm: must not contain quotes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := w.write(t, "bad.yaml", []byte("trust_anchors: [pki/ca.pem]\ntokens:\n"+tc.tokens))
			_, err := policy.LoadConfig(p, policy.LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"bound_token route without tokens", "routes: [{path_prefix: /api/, mode: bound_token}]\n", "routes[0].mode: bound_token needs tokens.issuers or tokens.introspection"},
		{"scopes on an identity route", "routes: [{path_prefix: /x/, mode: identity, scopes: [a]}]\n", "routes[0]: scopes, binding and require_client_match apply to bound_token routes only"},
		{"bad scope token", "tokens: {issuers: [{issuer: https://as, jwks_uri: https://as/jwks, audiences: [a]}]}\nroutes: [{path_prefix: /api/, mode: bound_token, scopes: ['a\"b']}]\n", `routes[0].scopes[0]: "a\"b" is not an RFC 6749 scope token`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := w.write(t, "bad.yaml", []byte(tc.yaml))
			_, err := policy.LoadConfig(p, policy.LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestJWTOfUnknownIssuer: with issuers configured, a JWT of another issuer is refused by name
// (token_issuer) without asking the authorization server, unless jwt_unknown_issuers says
// introspect; with introspection alone, every JWT is introspected.
func TestJWTOfUnknownIssuer(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	srv := newIntrospectionServer(t, nil)
	c := claims(w.billing)
	c["iss"] = "https://typo.example.org"
	foreign := k.sign(t, "ec-1", nil, c)
	introspection := "  introspection: {endpoint: " + srv.URL + ", client_id: certbind, client_secret: s3cret%s}\n"
	issuers := "  issuers: [{issuer: " + testIssuer + ", jwks_file: pki/as.jwks.json, audiences: [" + testAudience + "]}]\n"
	for _, tc := range []struct {
		name, tokens string
		want         policy.Reason
		calls        int64
	}{
		{"issuers and introspection: refused by name", issuers + fmt.Sprintf(introspection, ""), policy.ReasonTokenIssuer, 0},
		{"jwt_unknown_issuers: introspect", issuers + fmt.Sprintf(introspection, ", jwt_unknown_issuers: introspect"), policy.ReasonTokenInactive, 1},
		{"introspection alone", fmt.Sprintf(introspection, ""), policy.ReasonTokenInactive, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := w.engine(t, exampleConfig+"tokens:\n"+tc.tokens)
			before := srv.calls.Load()
			d := decide(e, policy.Input{ModeHint: "bound_token", Request: apiRequest(foreign), Certificate: presented(t, w.billing)})
			if d.Reason != tc.want || srv.calls.Load()-before != tc.calls {
				t.Fatalf("%s (%v) after %d introspection calls; want %s after %d", d.Reason, d.Cause, srv.calls.Load()-before, tc.want, tc.calls)
			}
			if tc.want == policy.ReasonTokenIssuer && !strings.Contains(d.Cause.Error(), `"https://typo.example.org"`) {
				t.Errorf("cause %v does not name the issuer", d.Cause)
			}
		})
	}
	p := w.write(t, "bad.yaml", []byte("tokens:\n"+fmt.Sprintf(introspection, ", jwt_unknown_issuers: maybe")))
	if _, err := policy.LoadConfig(p, policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), `tokens.introspection.jwt_unknown_issuers: "maybe": want refuse or introspect`) {
		t.Errorf("error %v", err)
	}
}
