package envoysim_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/testenv/envoysim"
	"github.com/certbind/certbind/testenv/pki"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const tokenForm = "grant_type=client_credentials&client_id="

// TestAllowedThroughCertbind: the real certbind behind the stand-in of the shipped envoy.yaml
// lets a client through with the headers it promises, over HTTP/1.1 and HTTP/2, and the
// upstream gets Envoy's XFCC for that connection, not the client's.
func TestAllowedThroughCertbind(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	up := newUpstream(t)
	authz := &counting{AuthorizationClient: w.certbind(t)}
	_, addr := start(t, w.config(s, authz, up))
	tests := []struct {
		name, method, path, body string
		cert                     *pki.Cert
		wantClientID             string
	}{
		{"token endpoint, client_auth", http.MethodPost, "/oauth2/token", tokenForm + "billing", w.billing, "billing"},
		{"identity route", http.MethodGet, "/internal/orders?limit=2", "", w.svc, "svc"},
	}
	for _, tc := range tests {
		for _, h2 := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: " HTTP/1.1", true: " HTTP/2"}[h2], func(t *testing.T) {
				c := w.client(tc.cert, h2)
				req := newRequest(t, tc.method, "https://"+addr+tc.path, strings.NewReader(tc.body),
					"Content-Type", "application/x-www-form-urlencoded",
					// Forged: another client's XFCC, and certbind's own headers.
					"X-Forwarded-Client-Cert", w.envoyElement(s, w.reports),
					"X-Certbind-Client-Id", "admin",
					"X-Certbind-Subject", "root",
					"X-Envoy-Retry-On", "5xx",
					"X-Request-Id", "client-chosen",
					// Envoy keeps a relative Referer and answers Expect: 100-continue itself.
					"Referer", "/relative/page.html",
					"Expect", "100-continue")
				if tc.body == "" {
					req.Body, req.ContentLength = http.NoBody, 0
				}
				resp := c.do(t, req)
				if resp.status != http.StatusOK || resp.body != "upstream ok" {
					t.Fatalf("%d %q", resp.status, resp.body)
				}
				if wantProto := map[bool]int{false: 1, true: 2}[h2]; resp.proto != wantProto {
					t.Errorf("HTTP/%d, want HTTP/%d", resp.proto, wantProto)
				}
				if resp.header.Get("Server") != "envoy" || resp.header.Get("X-Envoy-Upstream-Service-Time") == "" || resp.header.Get("X-Origin") != "1" {
					t.Errorf("response headers %v", resp.header)
				}
				got := up.last(t)
				want := map[string][]string{
					"X-Forwarded-Client-Cert":        {w.envoyElement(s, tc.cert)},
					extauthz.HeaderClientID:          {tc.wantClientID},
					extauthz.HeaderClientCert:        {":" + base64.StdEncoding.EncodeToString(tc.cert.DER()) + ":"},
					"X-Forwarded-Proto":              {"https"},
					"X-Forwarded-For":                {"127.0.0.1"},
					"X-Envoy-External-Address":       {"127.0.0.1"},
					"X-Envoy-Expected-Rq-Timeout-Ms": {"15000"},
					extauthz.HeaderSubject:           nil, // headers_to_remove
					"X-Envoy-Retry-On":               nil, // cleaned at the edge
					"Referer":                        {"/relative/page.html"},
					"Expect":                         nil,
				}
				for k, v := range want {
					if strings.Join(got.header.Values(k), "|") != strings.Join(v, "|") {
						t.Errorf("upstream %s = %q, want %q", k, got.header.Values(k), v)
					}
				}
				if rid := got.header.Values("X-Request-Id"); len(rid) != 1 || !uuidRE.MatchString(rid[0]) {
					t.Errorf("x-request-id %q: want a fresh UUID", rid)
				}
				if got.method != tc.method || got.uri != tc.path || got.host != addr || got.body != tc.body {
					t.Errorf("upstream got %s %s host %s body %q", got.method, got.uri, got.host, got.body)
				}
			})
		}
	}
}

// TestDeniedThroughCertbind: every denial is certbind's answer, delivered by the stand-in, and
// the upstream never sees the request.
func TestDeniedThroughCertbind(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	up := newUpstream(t)
	authz := &counting{AuthorizationClient: w.certbind(t)}
	_, addr := start(t, w.config(s, authz, up))
	tests := []struct {
		name      string
		cert      *pki.Cert
		path      string
		body      string
		hdr       []string
		status    int
		oauth     string
		authzCall bool
	}{
		{name: "another client's certificate", cert: w.reports, path: "/oauth2/token", body: tokenForm + "billing",
			status: http.StatusUnauthorized, oauth: "invalid_client", authzCall: true},
		{name: "forged XFCC of the right client cannot change the decision", cert: w.reports, path: "/oauth2/token", body: tokenForm + "billing",
			hdr: []string{"X-Forwarded-Client-Cert", w.envoyElement(s, w.billing)}, status: http.StatusUnauthorized, oauth: "invalid_client", authzCall: true},
		{name: "unregistered identity", cert: w.dnsOnly, path: "/internal/x",
			status: http.StatusForbidden, oauth: "access_denied", authzCall: true},
		{name: "body over max_request_bytes", cert: w.billing, path: "/oauth2/token", body: tokenForm + "billing&pad=" + strings.Repeat("x", 8192),
			status: http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, calls := up.count(), authz.n.Load()
			req := newRequest(t, http.MethodPost, "https://"+addr+tc.path, strings.NewReader(tc.body),
				append([]string{"Content-Type", "application/x-www-form-urlencoded"}, tc.hdr...)...)
			resp := w.client(tc.cert, false).do(t, req)
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.status, tc.status, resp.body)
			}
			if up.count() != before {
				t.Error("upstream called")
			}
			if made := authz.n.Load() - calls; (made == 1) != tc.authzCall || made > 1 {
				t.Errorf("%d authz calls", made)
			}
			if tc.oauth == "" {
				if resp.body != "Payload Too Large" || resp.header.Get("Content-Type") != "text/plain" {
					t.Errorf("local reply %q %v", resp.body, resp.header)
				}
				return
			}
			var body struct{ Error string }
			if err := json.Unmarshal([]byte(resp.body), &body); err != nil || body.Error != tc.oauth {
				t.Errorf("body %s (%v), want error %s", resp.body, err, tc.oauth)
			}
			if resp.header.Get("Content-Type") != "application/json" || resp.header.Get("Cache-Control") != "no-store" || resp.header.Get("Server") != "envoy" {
				t.Errorf("headers %v", resp.header)
			}
		})
	}
}

// TestRoutesWithoutCheck: /healthz is a direct response with ext_authz disabled; without the
// catch-all route an unmatched path is a 404 that skips ext_authz, as in Envoy.
func TestRoutesWithoutCheck(t *testing.T) {
	w := newWorld(t)
	up := newUpstream(t)
	authz := &counting{AuthorizationClient: w.certbind(t)}
	s := shippedSummary(t)
	if last := s.Routes[len(s.Routes)-1]; last.Prefix != "/" {
		t.Fatalf("shipped config: last route %+v, want the catch-all", last)
	}
	noCatchAll := s
	noCatchAll.Routes = s.Routes[:len(s.Routes)-1]
	_, addr := start(t, w.config(s, authz, up))
	_, addrNoCatchAll := start(t, w.config(noCatchAll, authz, up))

	tests := []struct {
		name, addr, path string
		status           int
		upstream         bool
	}{
		{"healthz", addr, "/healthz", http.StatusOK, false},
		{"healthz with a query", addr, "/healthz?probe=1", http.StatusOK, false},
		{"public metadata", addr, "/.well-known/jwks.json", http.StatusOK, true},
		{"no route", addrNoCatchAll, "/elsewhere", http.StatusNotFound, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, before := authz.n.Load(), up.count()
			resp := w.client(w.billing, false).do(t, newRequest(t, http.MethodGet, "https://"+tc.addr+tc.path, nil))
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d", resp.status, tc.status)
			}
			if n := authz.n.Load() - calls; n != 0 {
				t.Errorf("%d authz calls, want none", n)
			}
			if (up.count() > before) != tc.upstream {
				t.Errorf("upstream called: %v, want %v", up.count() > before, tc.upstream)
			}
			if !tc.upstream && (resp.body != "" || resp.header.Get("Server") != "envoy" || resp.header.Get("Content-Type") != "") {
				t.Errorf("local reply %q %v", resp.body, resp.header)
			}
		})
	}
}

// blocking never answers before its context ends.
type blocking struct{ authv3.AuthorizationClient }

func (blocking) Check(ctx context.Context, _ *authv3.CheckRequest, _ ...grpc.CallOption) (*authv3.CheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestAuthzFailure: certbind down or too slow is status_on_error (503 in envoy.yaml), never an
// allow.
func TestAuthzFailure(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	if s.StatusOnError != http.StatusServiceUnavailable {
		t.Fatalf("shipped status_on_error %d", s.StatusOnError)
	}
	lis := bufconn.Listen(1 << 10)
	down := dialBufconn(t, lis)
	must(t, lis.Close())

	fast := s
	fast.AuthzTimeout = 100 * time.Millisecond
	tests := []struct {
		name    string
		s       envoysim.Config
		atLeast time.Duration
	}{
		{"server down", w.config(s, down, newUpstream(t)), 0},
		{"timeout", w.config(fast, blocking{}, newUpstream(t)), fast.AuthzTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t)
			tc.s.Upstreams = map[string]string{"as": up.srv.URL, "api": up.srv.URL}
			_, addr := start(t, tc.s)
			t0 := time.Now()
			resp := w.client(w.billing, false).do(t, newRequest(t, http.MethodPost, "https://"+addr+"/oauth2/token", strings.NewReader(tokenForm+"billing")))
			if resp.status != http.StatusServiceUnavailable || resp.body != "" {
				t.Fatalf("%d %q, want 503 with no body", resp.status, resp.body)
			}
			if took := time.Since(t0); took < tc.atLeast {
				t.Errorf("answered after %v, before the %v timeout", took, tc.atLeast)
			}
			if up.count() != 0 {
				t.Error("upstream called")
			}
		})
	}
}

// TestTLS: the listener requires a client certificate chaining to trusted_ca; with
// ACCEPT_UNTRUSTED (envoy-self-signed.yaml) any certificate is accepted but one is required.
func TestTLS(t *testing.T) {
	w := newWorld(t)
	up := newUpstream(t)
	fake := &fakeAuthz{}
	authz := serveAuthz(t, fake)
	_, addr := start(t, w.config(shippedSummary(t), authz, up))
	selfSigned := summaryOf(t, "../../envoy/envoy-self-signed.yaml")
	if !selfSigned.AcceptUntrusted {
		t.Fatal("envoy-self-signed.yaml: want ACCEPT_UNTRUSTED")
	}
	_, addrUntrusted := start(t, w.config(selfSigned, authz, up))
	partner := pki.SelfSigned("partner")
	serverOnly := w.inter.Leaf("server-only", pki.ServerAuth())

	tests := []struct {
		name, addr string
		cert       *pki.Cert
		ok         bool
	}{
		{"trusted client", addr, w.billing, true},
		{"no certificate", addr, nil, false},
		{"self-signed", addr, partner, false},
		{"wrong key usage", addr, serverOnly, false},
		{"self-signed, ACCEPT_UNTRUSTED", addrUntrusted, partner, true},
		{"no certificate, ACCEPT_UNTRUSTED", addrUntrusted, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := w.client(tc.cert, false).Get("https://" + tc.addr + "/internal/x")
			if resp != nil {
				resp.Body.Close()
			}
			if tc.ok && (err != nil || resp.StatusCode != http.StatusOK) {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("accepted: %d", resp.StatusCode)
			}
		})
	}
	t.Run("TLS 1.1", func(t *testing.T) {
		cert := tlsCert(w.billing)
		conn, err := tlsDial(addr, w, cert, tls.VersionTLS11)
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 accepted")
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("err %v, want a protocol version alert", err)
		}
	})
}

// TestLogLine: one line per request, without tokens or certificates.
func TestLogLine(t *testing.T) {
	w := newWorld(t)
	up := newUpstream(t)
	logger, hook := nullLogger()
	cfg := w.config(shippedSummary(t), w.certbind(t), up)
	cfg.Logger = logger
	_, addr := start(t, cfg)
	resp := w.client(w.svc, false).do(t, newRequest(t, http.MethodGet, "https://"+addr+"/internal/x?access_token=s3cr3t", nil,
		"Authorization", "Bearer s3cr3t"))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d", resp.status)
	}
	var lines []string
	for _, e := range hook.AllEntries() {
		if e.Message == "request" {
			s, _ := e.String()
			lines = append(lines, s)
			if e.Data["authz"] != "allow" || e.Data["status"] != http.StatusOK || e.Data["path"] != "/internal/x" || e.Data["route"] != "prefix:/internal/" {
				t.Errorf("fields %v", e.Data)
			}
			if !uuidRE.MatchString(e.Data["request_id"].(string)) {
				t.Errorf("request_id %v", e.Data["request_id"])
			}
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d request lines", len(lines))
	}
	if strings.Contains(lines[0], "s3cr3t") || strings.Contains(lines[0], "BEGIN") || strings.Contains(lines[0], "Hash=") {
		t.Errorf("log line leaks: %s", lines[0])
	}
}

func TestNewRefuses(t *testing.T) {
	w := newWorld(t)
	up := newUpstream(t)
	good := func() envoysim.Config { return w.config(shippedSummary(t), blocking{}, up) }
	tests := []struct {
		name   string
		mutate func(*envoysim.Config)
		want   string
	}{
		{"cluster without upstream", func(c *envoysim.Config) { delete(c.Upstreams, "as") }, `unknown cluster "as"`},
		{"upstream with a path", func(c *envoysim.Config) { c.Upstreams["api"] = up.srv.URL + "/base" }, "not a base URL"},
		{"no trusted_ca", func(c *envoysim.Config) { c.ClientCAs = nil }, "ClientCAs is required"},
		{"no authz", func(c *envoysim.Config) { c.Authz = nil }, "Authz is required"},
		{"no server certificate", func(c *envoysim.Config) { c.ServerCert = tls.Certificate{} }, "ServerCert"},
		{"unknown forward mode", func(c *envoysim.Config) { c.Summary.ForwardMode = "JSON" }, "forward_client_cert_details"},
		{"zero timeout", func(c *envoysim.Config) { c.Summary.AuthzTimeout = 0 }, "AuthzTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			if _, err := envoysim.New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := envoysim.New(good()); err != nil {
		t.Fatal(err)
	}
}

// TestPlaintextServeHTTP: without TLS there is no peer, and SANITIZE_SET removes a client's
// XFCC instead of replacing it.
func TestPlaintextServeHTTP(t *testing.T) {
	w := newWorld(t)
	fake := &fakeAuthz{}
	up := newUpstream(t)
	p, err := envoysim.New(w.config(shippedSummary(t), serveAuthz(t, fake), up))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://example.test/internal/x", nil)
	req.Header.Set("X-Forwarded-Client-Cert", "Hash=forged")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	a := fake.last(t).GetAttributes()
	if _, ok := a.GetRequest().GetHttp().GetHeaders()["x-forwarded-client-cert"]; ok || a.GetSource().GetPrincipal() != "" || a.GetSource().GetCertificate() != "" {
		t.Errorf("plaintext request carries a certificate: %v", a.GetSource())
	}
	if h := a.GetRequest().GetHttp(); h.GetScheme() != "http" || h.GetHeaders()["x-forwarded-proto"] != "http" {
		t.Errorf("scheme %q", h.GetScheme())
	}
	if got := up.last(t).header.Values("X-Forwarded-Client-Cert"); len(got) != 0 {
		t.Errorf("upstream XFCC %q", got)
	}
}
