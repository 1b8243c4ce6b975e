package extauthz_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// sign issues an at+jwt with exactly the given claims.
func (s *signer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(claims)
	jws, err := sg.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// claimsFor are the claims of a valid token for client_id billing, bound to cert (nil: unbound).
func claimsFor(cert *pki.Cert, scope string) map[string]any {
	c := map[string]any{"iss": "https://as.example.org", "aud": "https://api.example.org", "sub": "user-7",
		"client_id": "billing", "scope": scope, "exp": t0.Add(time.Hour).Unix()}
	if cert != nil {
		c["cnf"] = map[string]any{"x5t#S256": policy.ThumbprintOf(cert.DER()).String()}
	}
	return c
}

// securityConfig: a host route and a segment route that need scope admin in front of a
// catch-all that does not, and routes limited to listed clients.
const securityConfig = `trust_anchors: [ca.pem]
clients:
  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=billing,O=Example Corp,C=SE"}
  - {client_id: reports, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=reports,O=Example Corp,C=SE"}
  - {client_id: svc, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_uri: "spiffe://example.org/svc"}
routes:
  - {host: admin.example.org, path_prefix: /, mode: bound_token, scopes: [admin]}
  - {path_separated_prefix: /api/admin, mode: bound_token, scopes: [admin]}
  - {path_prefix: /oauth2/token, mode: client_auth}
  - {path_prefix: /reports/, mode: identity, clients: [reports]}
  - {path_prefix: /payments/, mode: identity, clients: [billing, svc]}
  - {path_prefix: /billing-api/, mode: bound_token, clients: [billing]}
  - {path_prefix: /billing-strict/, mode: bound_token, clients: [billing], require_client_match: true}
  - {path_prefix: /, mode: bound_token}
` + tokensConfig

// attempt is one request as the proxy saw it.
type attempt struct {
	host, method, path string
	headers            map[string]string
	body               string
	cert               *pki.Cert // the client certificate, sent as Envoy's XFCC
}

func (a attempt) normalized() attempt {
	if a.host == "" {
		a.host = "api.example.org"
	}
	if a.method == "" {
		a.method = "GET"
	}
	h := map[string]string{}
	for k, v := range a.headers {
		h[k] = v
	}
	if a.cert != nil {
		h["x-forwarded-client-cert"] = envoyXFCC(a.cert)
	}
	if a.body != "" {
		h["content-type"] = "application/x-www-form-urlencoded"
	}
	a.headers = h
	return a
}

// checkRequest is a as Envoy's ext_authz filter sends it.
func (a attempt) checkRequest() *authv3.CheckRequest {
	a = a.normalized()
	h := map[string]string{":method": a.method, ":path": a.path, ":authority": a.host}
	for k, v := range a.headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: a.method, Scheme: "https", Path: a.path, Host: a.host, Headers: h, Body: a.body,
		}},
	}}
}

// raw is a as Envoy's http_service sends it, byte for byte (the Host header exactly as given,
// which net/http's client would refuse to send for some of these).
func (a attempt) raw() string {
	a = a.normalized()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", a.method, a.path, a.host, len(a.body))
	for k, v := range a.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + a.body)
	return b.String()
}

// transports runs the same attempt through the gRPC service and the HTTP endpoint and returns,
// for each, the reason, the HTTP status the client gets, and the decision's log line.
type transports struct {
	grpc     authv3.AuthorizationClient
	grpcLog  *logtest.Hook
	httpAddr string
	httpLog  *logtest.Hook
}

func (f *fixture) transports(t *testing.T, yaml string) *transports {
	t.Helper()
	f.write(t, "certbind.yaml", []byte(yaml))
	cfg, err := policy.LoadConfig(filepath.Join(f.dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: nowT0})
	tr := &transports{}
	tr.grpc, tr.grpcLog = startServer(t, e)
	logger, hook := logtest.NewNullLogger()
	srv := httptest.NewServer(extauthz.NewHTTPHandler(extauthz.New(extauthz.Config{Engine: e, Logger: logger})))
	t.Cleanup(srv.Close)
	tr.httpAddr, tr.httpLog = srv.Listener.Addr().String(), hook
	return tr
}

type outcome struct {
	reason policy.Reason
	status int
	log    string
	// upstream headers set on allow
	upstream map[string]string
}

func (tr *transports) viaGRPC(t *testing.T, a attempt) outcome {
	t.Helper()
	tr.grpcLog.Reset()
	resp, err := tr.grpc.Check(context.Background(), a.checkRequest())
	if err != nil {
		t.Fatal(err)
	}
	out := outcome{reason: policy.Reason(resp.GetStatus().GetMessage()), status: int(resp.GetDeniedResponse().GetStatus().GetCode())}
	if ok := resp.GetOkResponse(); ok != nil {
		out.reason, out.status, out.upstream = policy.ReasonOK, 200, headerMap(ok.GetHeaders())
	}
	out.log = logLine(t, tr.grpcLog)
	return out
}

func (tr *transports) viaHTTP(t *testing.T, a attempt) outcome {
	t.Helper()
	tr.httpLog.Reset()
	conn, err := net.Dial("tcp", tr.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(a.raw())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := outcome{reason: policy.Reason(resp.Header.Get("x-certbind-reason")), status: resp.StatusCode, upstream: map[string]string{}}
	if resp.StatusCode == 200 {
		out.reason = policy.ReasonOK
		for k := range resp.Header {
			out.upstream[strings.ToLower(k)] = resp.Header.Get(k)
		}
	}
	out.log = logLine(t, tr.httpLog)
	return out
}

// each runs a through the gRPC service and the HTTP endpoint, as subtests name/grpc and
// name/http, asserting the reason and status, then check for anything more.
func (tr *transports) each(t *testing.T, name string, a attempt, want policy.Reason, status int, check func(*testing.T, outcome)) {
	for _, via := range []struct {
		name string
		run  func(*testing.T, attempt) outcome
	}{{"grpc", tr.viaGRPC}, {"http", tr.viaHTTP}} {
		t.Run(name+"/"+via.name, func(t *testing.T) {
			got := via.run(t, a)
			if got.reason != want || got.status != status {
				t.Fatalf("%s %d, want %s %d", got.reason, got.status, want, status)
			}
			check(t, got)
		})
	}
}

func logLine(t *testing.T, h *logtest.Hook) string {
	e := h.LastEntry()
	if e == nil {
		return ""
	}
	line, err := e.String()
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestSecurityReview: each wrong allow and weakness of the adversarial review (issue 10),
// through both transports, with the exact reason and status.
func TestSecurityReview(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t, f)
	tr := f.transports(t, securityConfig)
	bearer := func(c map[string]any) map[string]string {
		return map[string]string{"authorization": "Bearer " + s.sign(t, c)}
	}
	read, admin := bearer(claimsFor(f.billing, "read")), bearer(claimsFor(f.billing, "read admin"))
	with := func(scope string, extra map[string]any) map[string]string {
		c := claimsFor(f.billing, scope)
		for k, v := range extra {
			c[k] = v
		}
		return bearer(c)
	}
	tokenFor := func(cert *pki.Cert, clientID string) map[string]string {
		c := claimsFor(cert, "read")
		c["client_id"] = clientID
		return bearer(c)
	}
	basicBilling := "Basic YmlsbGluZzo=" // billing:

	tests := []struct {
		name   string
		a      attempt
		want   policy.Reason
		status int
	}{
		// 1. Host routes: the authority is canonicalized before routes are matched.
		{"host route, read token", attempt{host: "admin.example.org", path: "/x", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"host route with a trailing dot", attempt{host: "admin.example.org.", path: "/x", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"host route with a trailing dot and a port", attempt{host: "admin.example.org.:443", path: "/x", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"host route in upper case with a port", attempt{host: "ADMIN.Example.org:8443", path: "/x", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"host route, admin token", attempt{host: "admin.example.org.", path: "/x", headers: admin, cert: f.billing}, policy.ReasonOK, 200},
		{"authority with two trailing dots", attempt{host: "admin.example.org..", path: "/x", headers: read, cert: f.billing}, policy.ReasonRequestMalformed, 400},
		{"authority with a bad port", attempt{host: "admin.example.org:x", path: "/x", headers: read, cert: f.billing}, policy.ReasonRequestMalformed, 400},
		{"authority percent-encoded", attempt{host: "admin%2Eexample.org", path: "/x", headers: read, cert: f.billing}, policy.ReasonRequestMalformed, 400},
		// 4. Scopes split on SP only.
		{"scope split by NBSP", attempt{path: "/api/admin", headers: with("read\u00a0admin", nil), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		{"scope split by TAB", attempt{path: "/api/admin", headers: with("read\tadmin", nil), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		{"scope split by LF", attempt{path: "/api/admin", headers: with("read\nadmin", nil), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		{"scope split by EM SPACE", attempt{path: "/api/admin", headers: with("read\u2003admin", nil), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		{"scope split by NEL", attempt{path: "/api/admin", headers: with("read\u0085admin", nil), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		// 5. A binding certbind cannot check, and one it checks beside the certificate's: a
		// token bound by certificate and DPoP key needs both proofs, so as Bearer it fails.
		{"cnf x5t#S256 and jwk", attempt{path: "/api/x", headers: with("read", map[string]any{"cnf": map[string]any{
			"x5t#S256": policy.ThumbprintOf(f.billing.DER()).String(), "jwk": map[string]any{"kty": "EC"}}}), cert: f.billing}, policy.ReasonTokenCNFUnsupported, 401},
		{"cnf x5t#S256 and jkt, as Bearer", attempt{path: "/api/x", headers: with("read", map[string]any{"cnf": map[string]any{
			"x5t#S256": policy.ThumbprintOf(f.billing.DER()).String(), "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}), cert: f.billing}, policy.ReasonTokenDPoPAsBearer, 401},
		// 6. Control characters in upstream header values.
		{"sub with CR LF", attempt{path: "/api/x", headers: with("read", map[string]any{"sub": "billing\r\nx-certbind-client-id: admin"}), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		{"client_id with a NUL", attempt{path: "/api/x", headers: with("read", map[string]any{"client_id": "billing\x00"}), cert: f.billing}, policy.ReasonTokenMalformed, 401},
		// 9. Segment prefixes: /api/admin is protected as a path and a subtree.
		{"bare segment path", attempt{path: "/api/admin", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"bare segment path with a query", attempt{path: "/api/admin?x=1", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"below the segment", attempt{path: "/api/admin/users", headers: read, cert: f.billing}, policy.ReasonInsufficientScope, 403},
		{"another segment sharing the prefix", attempt{path: "/api/administrator", headers: read, cert: f.billing}, policy.ReasonOK, 200},
		// 10. Token endpoint inputs.
		{"client_id in the body and Basic", attempt{method: "POST", path: "/oauth2/token", body: "client_id=billing", headers: map[string]string{"authorization": basicBilling}, cert: f.billing}, policy.ReasonClientAuthMultiple, 400},
		{"client_id as Basic user only", attempt{method: "POST", path: "/oauth2/token", headers: map[string]string{"authorization": basicBilling}, cert: f.billing}, policy.ReasonOK, 200},
		{"form body over 64 KiB", attempt{method: "POST", path: "/oauth2/token", body: "client_id=billing&x=" + strings.Repeat("a", 64<<10), cert: f.billing}, policy.ReasonRequestMalformed, 400},
		// routes[].clients
		{"identity route, listed client", attempt{path: "/reports/x", cert: f.other}, policy.ReasonOK, 200},
		{"identity route, unlisted client", attempt{path: "/reports/x", cert: f.billing}, policy.ReasonClientNotAllowed, 403},
		{"identity route, second listed client", attempt{path: "/payments/x", cert: f.svc}, policy.ReasonOK, 200},
		{"bound_token route, certificate of a listed client", attempt{path: "/billing-api/x", headers: read, cert: f.billing}, policy.ReasonOK, 200},
		{"bound_token route, certificate of an unlisted client", attempt{path: "/billing-api/x", headers: tokenFor(f.svc, "svc"), cert: f.svc}, policy.ReasonClientNotAllowed, 403},
		{"bound_token route, token of an unlisted client under require_client_match", attempt{path: "/billing-strict/x", headers: tokenFor(f.billing, "svc"), cert: f.billing}, policy.ReasonTokenClientMismatch, 401},
		{"bound_token route, listed client under require_client_match", attempt{path: "/billing-strict/x", headers: read, cert: f.billing}, policy.ReasonOK, 200},
	}
	for _, tc := range tests {
		tr.each(t, tc.name, tc.a, tc.want, tc.status, func(t *testing.T, got outcome) {
			if !strings.Contains(got.log, "reason="+string(tc.want)) {
				t.Errorf("log line %q does not name reason %s", got.log, tc.want)
			}
			for _, v := range got.upstream {
				if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					t.Errorf("upstream value %q holds a control character", v)
				}
			}
		})
	}
}

// TestAuthorizationNeverLogged: no part of an Authorization value reaches the decision log,
// whatever its shape (item 7 of issue 10).
func TestAuthorizationNeverLogged(t *testing.T) {
	f := newFixture(t)
	newSigner(t, f)
	tr := f.transports(t, securityConfig)
	for _, v := range []string{"hunterqwertyuio", "hunter2 qwertyuio", "Basic aHVudGVyOnF3ZXJ0eXVpbw==", "Token hunterqwertyuio", "hunter-qwertyuio"} {
		for _, via := range []func(*testing.T, attempt) outcome{tr.viaGRPC, tr.viaHTTP} {
			got := via(t, attempt{path: "/api/x", headers: map[string]string{"authorization": v}, cert: f.billing})
			if got.reason != policy.ReasonTokenMissing {
				t.Errorf("%q: %s, want token_missing", v, got.reason)
			}
			for _, part := range strings.Fields(v) {
				if strings.Contains(got.log, part) && part != "Basic" {
					t.Errorf("%q: log line %q quotes %q", v, got.log, part)
				}
			}
		}
	}
	// A scheme from the registry is named in certbind's own spelling.
	got := tr.viaGRPC(t, attempt{path: "/api/x", headers: map[string]string{"authorization": "digest abc"}, cert: f.billing})
	if !strings.Contains(got.log, "Authorization scheme Digest is neither Bearer nor DPoP") {
		t.Errorf("log line %q", got.log)
	}
	// At the token endpoint, Basic credentials that do not decode are not quoted either.
	for _, v := range []string{"Basic hunter%zzqwerty", "Basic " + "aHVudGVyJXp6cXdlcnR5Og=="} { // the second is "hunter%zzqwerty:"
		for _, via := range []func(*testing.T, attempt) outcome{tr.viaGRPC, tr.viaHTTP} {
			got := via(t, attempt{method: "POST", path: "/oauth2/token", headers: map[string]string{"authorization": v}, cert: f.billing})
			if got.reason != policy.ReasonRequestMalformed || strings.Contains(got.log, "hunter") || strings.Contains(got.log, "qwerty") || strings.Contains(got.log, "%zz") {
				t.Errorf("%q: %s, log %q", v, got.reason, got.log)
			}
		}
	}
}

// TestDirectoryNameConstraintsOverTransports: a CA permitted only O=Partner cannot vouch for a
// registered Example Corp subject, and a critical directoryName constraint certbind enforces no
// longer takes its CA out of service (item 2 of issue 10), through both transports.
func TestDirectoryNameConstraintsOverTransports(t *testing.T) {
	f := newFixture(t)
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	billingDN := pki.Subject("CN=billing,O=Example Corp,C=SE")
	partnerCA := f.root.Intermediate("Partner CA", pki.Subject("CN=Partner CA,O=Partner"), pki.PermittedDirectoryNames(false, "O=Partner"), win)
	criticalCA := f.root.Intermediate("Example CA", pki.Subject("CN=Example CA,O=Example Corp,C=SE"), pki.PermittedDirectoryNames(true, "O=Example Corp,C=SE"), win)
	tr := f.transports(t, baseConfig)
	token := func(cert *pki.Cert) attempt {
		return attempt{method: "POST", path: "/oauth2/token", body: "client_id=billing", cert: cert}
	}
	for _, tc := range []struct {
		name   string
		a      attempt
		want   policy.Reason
		status int
	}{
		{"subject outside a non-critical permitted subtree", token(partnerCA.Leaf("billing", billingDN, win)), policy.ReasonCertificateInvalid, 401},
		{"subject within a critical permitted subtree", token(criticalCA.Leaf("billing", billingDN, win)), policy.ReasonOK, 200},
		{"subject outside a critical permitted subtree", token(criticalCA.Leaf("billing", pki.Subject("CN=billing,O=Example Corp,C=NO"), win)), policy.ReasonCertificateInvalid, 401},
		{"identity: subject outside the subtree", attempt{path: "/internal/x", cert: partnerCA.Leaf("billing", billingDN, win)}, policy.ReasonCertificateInvalid, 403},
	} {
		tr.each(t, tc.name, tc.a, tc.want, tc.status, func(t *testing.T, got outcome) {
			if tc.want == policy.ReasonCertificateInvalid && !strings.Contains(got.log, "directoryName subtree") {
				t.Errorf("log line %q does not name the constraint", got.log)
			}
		})
	}
}
