package envoysim_test

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/pki"
)

// TestCheckRequest captures the CheckRequest the stand-in sends and checks every field Envoy
// fills (check_request_utils.cc) for the shipped config.
func TestCheckRequest(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	fake := &fakeAuthz{}
	up := newUpstream(t)
	_, addr := start(t, w.config(s, serveAuthz(t, fake), up))

	subject, err := envoyxfcc.FormatSubject(w.billing.Cert.RawSubject)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		cert          *pki.Cert
		h2            bool
		principal     string
		protocol      string
		method, path  string
		body          string
		wantPath      string
		wantMode      string
		wantBody      bool
		wantHeaderLen int
	}{
		{name: "URI SAN, HTTP/1.1", cert: w.svc, principal: "spiffe://example.org/svc", protocol: "HTTP/1.1",
			method: http.MethodGet, path: "/internal/a%20b/./c//d?q=1%2B2&r=%2F", wantPath: "/internal/a%20b/c/d?q=1%2B2&r=%2F", wantMode: "identity"},
		{name: "DNS SAN only, HTTP/2", cert: w.dnsOnly, h2: true, principal: "inventory.example.org", protocol: "HTTP/2",
			method: http.MethodGet, path: "/api/../internal/x", wantPath: "/internal/x", wantMode: "identity"},
		{name: "subject only, token endpoint with body", cert: w.billing, principal: subject, protocol: "HTTP/1.1",
			method: http.MethodPost, path: "/oauth2/token", body: tokenForm + "billing", wantPath: "/oauth2/token", wantMode: "client_auth", wantBody: true},
		{name: "subject only, token endpoint, HTTP/2", cert: w.billing, h2: true, principal: subject, protocol: "HTTP/2",
			method: http.MethodPost, path: "/oauth2/token", body: tokenForm + "billing", wantPath: "/oauth2/token", wantMode: "client_auth", wantBody: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := w.client(tc.cert, tc.h2)
			t0 := time.Now()
			req := newRequest(t, tc.method, "https://"+addr+tc.path, strings.NewReader(tc.body),
				"X-Dup", "a", "X-Dup", "b",
				"X-Envoy-Auth-Partial-Body", "forged",
				"X-Forwarded-Client-Cert", "Hash=forged",
				"Content-Type", "application/x-www-form-urlencoded")
			if tc.body == "" {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			if resp := c.do(t, req); resp.status != http.StatusOK {
				t.Fatalf("status %d", resp.status)
			}
			cr := fake.last(t)
			a := cr.GetAttributes()

			// Source: the client's socket, principal rule, URL-encoded PEM of the leaf only.
			src := a.GetSource()
			sa := src.GetAddress().GetSocketAddress()
			if got := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))); got != c.localAddr() {
				t.Errorf("source address %s, want %s", got, c.localAddr())
			}
			if src.GetPrincipal() != tc.principal {
				t.Errorf("source principal %q, want %q", src.GetPrincipal(), tc.principal)
			}
			if src.GetCertificate() != envoyxfcc.EncodePEM(tc.cert.PEM()) {
				t.Errorf("source certificate %.60q..., want the URL-encoded PEM of the leaf", src.GetCertificate())
			}
			if strings.ContainsAny(src.GetCertificate(), "\n +/=") {
				t.Error("source certificate is not URL-encoded")
			}
			// Destination: the listener, principal from its certificate (first URI SAN).
			da := a.GetDestination().GetAddress().GetSocketAddress()
			if got := net.JoinHostPort(da.GetAddress(), strconv.Itoa(int(da.GetPortValue()))); got != addr {
				t.Errorf("destination address %s, want %s", got, addr)
			}
			if p := a.GetDestination().GetPrincipal(); p != "spiffe://certbind.test/envoy" {
				t.Errorf("destination principal %q", p)
			}
			if a.GetDestination().GetCertificate() != "" {
				t.Error("destination certificate set")
			}

			r := a.GetRequest()
			if tm := r.GetTime().AsTime(); tm.Before(t0.Add(-time.Second)) || tm.After(time.Now()) {
				t.Errorf("request time %v", tm)
			}
			h := r.GetHttp()
			if _, err := strconv.ParseUint(h.GetId(), 10, 64); err != nil {
				t.Errorf("id %q is not Envoy's decimal stream id", h.GetId())
			}
			if h.GetMethod() != tc.method || h.GetPath() != tc.wantPath || h.GetHost() != addr || h.GetScheme() != "https" || h.GetProtocol() != tc.protocol {
				t.Errorf("method %q path %q host %q scheme %q protocol %q", h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme(), h.GetProtocol())
			}
			hd := h.GetHeaders()
			for k := range hd {
				if k != strings.ToLower(k) {
					t.Errorf("header key %q not lower case", k)
				}
			}
			want := map[string]string{
				":authority":               addr,
				":method":                  tc.method,
				":path":                    tc.wantPath,
				":scheme":                  "https",
				"x-dup":                    "a,b",
				"x-forwarded-proto":        "https",
				"x-forwarded-for":          "127.0.0.1",
				"x-envoy-external-address": "127.0.0.1",
				"x-forwarded-client-cert":  w.envoyElement(s, tc.cert),
				"content-type":             "application/x-www-form-urlencoded",
			}
			if tc.wantBody {
				want["x-envoy-auth-partial-body"] = "false"
				want["content-length"] = strconv.Itoa(len(tc.body))
			}
			for k, v := range want {
				if hd[k] != v {
					t.Errorf("header %s = %q, want %q", k, hd[k], v)
				}
			}
			if _, ok := hd["host"]; ok {
				t.Error("host header: Envoy has only :authority")
			}
			if !tc.wantBody {
				if _, ok := hd["x-envoy-auth-partial-body"]; ok {
					t.Error("client-sent x-envoy-auth-partial-body reached the check")
				}
			}
			if !uuidRE.MatchString(hd["x-request-id"]) {
				t.Errorf("x-request-id %q", hd["x-request-id"])
			}
			if tc.wantBody {
				if h.GetBody() != tc.body || h.GetSize() != int64(len(tc.body)) {
					t.Errorf("body %q size %d", h.GetBody(), h.GetSize())
				}
			} else if h.GetBody() != "" || h.GetRawBody() != nil || h.GetSize() != 0 {
				t.Errorf("body %q raw %q size %d without with_request_body", h.GetBody(), h.GetRawBody(), h.GetSize())
			}
			if ce := a.GetContextExtensions(); len(ce) != 1 || ce["certbind_mode"] != tc.wantMode {
				t.Errorf("context_extensions %v", ce)
			}
			if a.GetMetadataContext() == nil || a.GetRouteMetadataContext() == nil || a.GetTlsSession() != nil {
				t.Error("metadata contexts are always set, tls_session only with include_tls_session")
			}
			// The upstream gets the same XFCC and path as the check.
			got := up.last(t)
			if got.header.Get("X-Forwarded-Client-Cert") != hd["x-forwarded-client-cert"] || got.uri != tc.wantPath || got.body != tc.body {
				t.Errorf("upstream XFCC/path/body differ from the check: %q %q", got.uri, got.body)
			}
		})
	}
}

// TestPartialBody: with allow_partial_message the check gets max_request_bytes and
// x-envoy-auth-partial-body: true, and the upstream still gets the whole body.
func TestPartialBody(t *testing.T) {
	w := newWorld(t)
	s := shippedSummary(t)
	for i := range s.Routes {
		if s.Routes[i].Prefix == "/oauth2/token" {
			s.Routes[i].AllowPartialMessage = true
			s.Routes[i].MaxRequestBytes = 16
		}
	}
	fake := &fakeAuthz{}
	up := newUpstream(t)
	_, addr := start(t, w.config(s, serveAuthz(t, fake), up))
	tests := []struct {
		body, wantBody, partial string
	}{
		{"client_id=billing&grant_type=client_credentials", "client_id=billin", "true"},
		{"client_id=billin", "client_id=billin", "false"},
		{"client_id=b", "client_id=b", "false"},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			resp := w.client(w.billing, false).do(t, newRequest(t, http.MethodPost, "https://"+addr+"/oauth2/token", strings.NewReader(tc.body)))
			if resp.status != http.StatusOK {
				t.Fatalf("status %d", resp.status)
			}
			h := fake.last(t).GetAttributes().GetRequest().GetHttp()
			if h.GetBody() != tc.wantBody || h.GetHeaders()["x-envoy-auth-partial-body"] != tc.partial {
				t.Errorf("body %q partial %q", h.GetBody(), h.GetHeaders()["x-envoy-auth-partial-body"])
			}
			if got := up.last(t).body; got != tc.body {
				t.Errorf("upstream body %q", got)
			}
		})
	}
}
