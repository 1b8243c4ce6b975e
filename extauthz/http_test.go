package extauthz_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
)

func (f *fixture) httpServer(t *testing.T, yaml string) *httptest.Server {
	t.Helper()
	f.write(t, "certbind.yaml", []byte(yaml))
	cfg, err := policy.LoadConfig(filepath.Join(f.dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return t0 }})
	srv := httptest.NewServer(extauthz.NewHTTPHandler(extauthz.New(extauthz.Config{Engine: e})))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, method, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestHTTPAuthzNginx(t *testing.T) {
	f := newFixture(t)
	// nginx auth_request: a body-less GET subrequest; the original URI and method in headers,
	// the leaf from $ssl_client_escaped_cert, the intermediate from configuration.
	srv := f.httpServer(t, baseConfig+`intermediates: [inter.pem]
http_authz:
  certificate_format: pem_urlencoded
  certificate_header: X-SSL-Client-Cert
  original_uri_header: X-Original-URI
  original_method_header: X-Original-Method
`)
	nginx := func(uri string, cert string) map[string]string {
		return map[string]string{"X-Original-URI": uri, "X-Original-Method": "POST", "X-SSL-Client-Cert": cert, "X-Request-Id": "r1"}
	}
	resp := send(t, "GET", srv.URL+"/auth", nginx("/oauth2/token?client_id=billing", envoyxfcc.EncodePEM(f.billing.PEM())), "")
	if resp.StatusCode != 200 || resp.Header.Get(extauthz.HeaderClientID) != "billing" ||
		resp.Header.Get(extauthz.HeaderClientCert) != ":"+base64.StdEncoding.EncodeToString(f.billing.DER())+":" {
		t.Fatalf("allow: %d %v", resp.StatusCode, resp.Header)
	}
	if got := resp.Header.Get("x-envoy-auth-headers-to-remove"); got != extauthz.HeaderClientCertChain+","+extauthz.HeaderSubject+","+extauthz.HeaderScope+","+extauthz.HeaderDPoPKey {
		t.Errorf("headers to remove %q", got)
	}
	for _, tc := range []struct {
		name, uri, cert string
		status          int
		reason          policy.Reason
	}{
		{"another client's certificate", "/oauth2/token?client_id=billing", envoyxfcc.EncodePEM(f.other.PEM()), 401, policy.ReasonCertificateUnbound},
		{"no certificate", "/oauth2/token?client_id=billing", "", 401, policy.ReasonNoCertificate},
		{"garbage certificate", "/oauth2/token?client_id=billing", "abc", 401, policy.ReasonCertificateMalformed},
		{"identity route", "/internal/x", envoyxfcc.EncodePEM(f.other.PEM()), 200, policy.ReasonOK},
		{"no route", "/else", envoyxfcc.EncodePEM(f.billing.PEM()), 403, policy.ReasonNoPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(t, "GET", srv.URL+"/auth", nginx(tc.uri, tc.cert), "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				return
			}
			if got := resp.Header.Get("x-certbind-reason"); got != string(tc.reason) {
				t.Errorf("reason %q, want %s", got, tc.reason)
			}
			var body map[string]string
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil || body["error_description"] != tc.reason.Description() {
				t.Errorf("body %s", b)
			}
		})
	}
}

func TestHTTPAuthzEnvoyHTTPService(t *testing.T) {
	f := newFixture(t)
	srv := f.httpServer(t, baseConfig)
	// Envoy's http_service forwards the request itself: path, headers, and body when configured.
	resp := send(t, "POST", srv.URL+"/oauth2/token", map[string]string{
		"x-forwarded-client-cert": envoyXFCC(f.billing), "content-type": "application/x-www-form-urlencoded",
		"x-certbind-mode": "client_auth"}, "grant_type=client_credentials&client_id=billing")
	if resp.StatusCode != 200 || resp.Header.Get(extauthz.HeaderClientID) != "billing" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	resp = send(t, "POST", srv.URL+"/oauth2/token", map[string]string{
		"x-forwarded-client-cert": envoyXFCC(f.billing) + "," + envoyXFCC(f.other), "content-type": "application/x-www-form-urlencoded"},
		"client_id=billing")
	if resp.StatusCode != 401 || resp.Header.Get("x-certbind-reason") != string(policy.ReasonXFCCElements) {
		t.Fatalf("two elements: %d %s", resp.StatusCode, resp.Header.Get("x-certbind-reason"))
	}
	// A body larger than max_body_bytes is truncated, so client_id cannot be trusted.
	resp = send(t, "POST", srv.URL+"/oauth2/token", map[string]string{
		"x-forwarded-client-cert": envoyXFCC(f.billing), "content-type": "application/x-www-form-urlencoded"},
		"client_id=billing&pad="+strings.Repeat("a", 70<<10))
	if resp.StatusCode != 400 || resp.Header.Get("x-certbind-reason") != string(policy.ReasonRequestMalformed) {
		t.Fatalf("huge body: %d %s", resp.StatusCode, resp.Header.Get("x-certbind-reason"))
	}
}

func TestHTTPAuthzRFC9440(t *testing.T) {
	f := newFixture(t)
	srv := f.httpServer(t, baseConfig+"http_authz: {certificate_format: rfc9440}\n")
	seq := func(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
		reason policy.Reason
	}{
		{"leaf and chain", map[string]string{"client-cert": seq(f.svc.DER()), "client-cert-chain": seq(f.inter.DER())}, 200, policy.ReasonOK},
		{"leaf without its intermediate", map[string]string{"client-cert": seq(f.svc.DER())}, 403, policy.ReasonCertificateUntrusted},
		{"not a byte sequence", map[string]string{"client-cert": base64.StdEncoding.EncodeToString(f.svc.DER())}, 403, policy.ReasonCertificateMalformed},
		{"bad chain item", map[string]string{"client-cert": seq(f.svc.DER()), "client-cert-chain": ":!!:"}, 403, policy.ReasonCertificateMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.hdr["x-certbind-mode"] = "identity"
			resp := send(t, "GET", srv.URL+"/internal/x", tc.hdr, "")
			if resp.StatusCode != tc.status || (tc.status != 200 && resp.Header.Get("x-certbind-reason") != string(tc.reason)) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, resp.Header.Get("x-certbind-reason"), tc.status, tc.reason)
			}
		})
	}
}

func TestHTTPAuthzAuthRequestStatuses(t *testing.T) {
	f := newFixture(t)
	srv := f.httpServer(t, baseConfig+"http_authz: {auth_request_statuses: true}\n")
	// client_id conflict is a 400 elsewhere; nginx would turn a 400 from auth_request into a 500.
	resp := send(t, "POST", srv.URL+"/oauth2/token?client_id=reports", map[string]string{
		"x-forwarded-client-cert": envoyXFCC(f.billing), "content-type": "application/x-www-form-urlencoded"}, "client_id=billing")
	if resp.StatusCode != 403 || resp.Header.Get("x-certbind-status") != "400" ||
		resp.Header.Get("x-certbind-error") != "invalid_request" || resp.Header.Get("x-certbind-error-description") != policy.ReasonClientIDConflict.Description() {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	resp = send(t, "POST", srv.URL+"/oauth2/token", map[string]string{
		"x-forwarded-client-cert": envoyXFCC(f.other), "content-type": "application/x-www-form-urlencoded"}, "client_id=billing")
	if resp.StatusCode != 401 || resp.Header.Get("x-certbind-status") != "" || resp.Header.Get("x-certbind-error") != "invalid_client" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// TestHTTPAuthzCertificateSources: the HTTP endpoint applies the same certificate rules as the
// gRPC path. It never sees a peer certificate beside an XFCC header, so "last" (which needs the
// peer to confirm the element) and peer: require deny; xfcc: ignore means no certificate.
func TestHTTPAuthzCertificateSources(t *testing.T) {
	f := newFixture(t)
	seq := func(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }
	forged := envoyXFCC(f.other) + `;URI=spiffe://x,` + envoyXFCC(f.billing)
	for _, tc := range []struct {
		name, yaml string
		hdr        map[string]string
		status     int
		reason     policy.Reason
	}{
		{"last: an element the peer cannot confirm", "xfcc: {elements: last}\n",
			map[string]string{"x-forwarded-client-cert": forged}, 401, policy.ReasonNoCertificate},
		{"xfcc: ignore", "certificate_sources: {xfcc: ignore}\n",
			map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing)}, 401, policy.ReasonNoCertificate},
		{"peer: require, XFCC only", "certificate_sources: {peer: require}\n",
			map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing)}, 401, policy.ReasonNoCertificate},
		{"rfc9440, xfcc: require", "certificate_sources: {xfcc: require}\nhttp_authz: {certificate_format: rfc9440}\n",
			map[string]string{"client-cert": seq(f.billing.DER())}, 401, policy.ReasonNoCertificate},
		{"rfc9440, peer: ignore", "certificate_sources: {peer: ignore}\nhttp_authz: {certificate_format: rfc9440}\n",
			map[string]string{"client-cert": seq(f.billing.DER())}, 401, policy.ReasonNoCertificate},
		{"rfc9440, peer: require, none sent", "certificate_sources: {peer: require}\nhttp_authz: {certificate_format: rfc9440}\n",
			map[string]string{}, 401, policy.ReasonNoCertificate},
		{"rfc9440, peer: require", "certificate_sources: {peer: require}\nhttp_authz: {certificate_format: rfc9440}\n",
			map[string]string{"client-cert": seq(f.billing.DER()), "client-cert-chain": seq(f.inter.DER())}, 200, policy.ReasonOK},
		{"single: the genuine element", "",
			map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing)}, 200, policy.ReasonOK},
		{"XFCC by a proxy not in trusted_proxies", "xfcc: {trusted_proxies: [spiffe://example.org/other-proxy]}\n",
			map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing)}, 401, policy.ReasonXFCCUntrusted},
		{"rfc9440 chain longer than max_chain_length", "xfcc: {max_chain_length: 2}\nhttp_authz: {certificate_format: rfc9440}\n",
			map[string]string{"client-cert": seq(f.billing.DER()), "client-cert-chain": seq(f.inter.DER()) + ", " + seq(f.inter.DER())}, 401, policy.ReasonChainTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := f.httpServer(t, baseConfig+tc.yaml)
			tc.hdr["content-type"] = "application/x-www-form-urlencoded"
			resp := send(t, "POST", srv.URL+"/oauth2/token", tc.hdr, "client_id=billing")
			if resp.StatusCode != tc.status || (tc.status != 200 && resp.Header.Get("x-certbind-reason") != string(tc.reason)) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, resp.Header.Get("x-certbind-reason"), tc.status, tc.reason)
			}
		})
	}
}

// TestHTTPAuthzModeHeader: the mode comes from a header only when http_authz.mode_header names
// it (the proxy must then set it); otherwise a client-sent copy cannot choose the mode.
func TestHTTPAuthzModeHeader(t *testing.T) {
	f := newFixture(t)
	hdr := func() map[string]string {
		return map[string]string{"x-forwarded-client-cert": envoyXFCC(f.other), "x-certbind-mode": "identity",
			"content-type": "application/x-www-form-urlencoded"}
	}
	// The route says client_auth, and other is not billing's certificate; identity would allow
	// other as the client it is registered as.
	resp := send(t, "POST", f.httpServer(t, baseConfig).URL+"/oauth2/token", hdr(), "client_id=billing")
	if resp.StatusCode != 401 || resp.Header.Get("x-certbind-reason") != string(policy.ReasonCertificateUnbound) {
		t.Fatalf("default: %d %s, want the route's client_auth to decide", resp.StatusCode, resp.Header.Get("x-certbind-reason"))
	}
	resp = send(t, "POST", f.httpServer(t, baseConfig+"http_authz: {mode_header: X-Certbind-Mode}\n").URL+"/oauth2/token", hdr(), "client_id=billing")
	if resp.StatusCode != 200 || resp.Header.Get(extauthz.HeaderClientID) != "reports" {
		t.Fatalf("mode_header set: %d %s, want identity to allow the certificate's own client", resp.StatusCode, resp.Header.Get("x-certbind-reason"))
	}
}

// TestHTTPAuthzUnavailable: without a configuration the endpoint answers 503; with
// auth_request_statuses a 503 decision becomes a 403 carrying the real status.
func TestHTTPAuthzUnavailable(t *testing.T) {
	empty := httptest.NewServer(extauthz.NewHTTPHandler(extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{})})))
	defer empty.Close()
	if resp := send(t, "GET", empty.URL+"/internal/x", nil, ""); resp.StatusCode != 503 {
		t.Errorf("no configuration: %d, want 503", resp.StatusCode)
	}

	f := newFixture(t)
	srv := f.httpServer(t, strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1)+
		"tokens:\n  introspection: {endpoint: \"http://127.0.0.1:1/introspect\", client_id: c, client_secret: s, timeout: 1s}\nhttp_authz: {auth_request_statuses: true}\n")
	resp := send(t, "GET", srv.URL+"/api/x", map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing), "authorization": "Bearer opaque"}, "")
	if resp.StatusCode != 403 || resp.Header.Get("x-certbind-status") != "503" ||
		resp.Header.Get("x-certbind-reason") != string(policy.ReasonTokenUnverifiable) || resp.Header.Get("x-certbind-error") != "temporarily_unavailable" {
		t.Errorf("introspection down: %d %v", resp.StatusCode, resp.Header)
	}
}
