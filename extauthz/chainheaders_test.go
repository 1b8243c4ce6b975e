package extauthz_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

// A client-sent Client-Cert-Chain must not reach the upstream next to certbind's verified
// Client-Cert: RFC 9440 section 3 sanitizes the two together. Forged chain items the upstream
// might read as the client's intermediates.
const forgedChain = ":Zm9yZ2VkIGludGVybWVkaWF0ZQ==:, :Zm9yZ2VkIHJvb3Q=:"

// TestCheckRemovesClientCertChain: on every allow the OkHttpResponse lists client-cert-chain in
// headers_to_remove (applied after the additions) and never sets it.
func TestCheckRemovesClientCertChain(t *testing.T) {
	f := newFixture(t)
	client, _ := f.start(t, baseConfig)
	for _, tc := range []struct {
		name     string
		r        req
		clientID string
	}{
		{"client_auth", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing)}, "billing"},
		{"identity", req{path: "/internal/x", xfccHeader: envoyXFCC(f.svc)}, "svc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.headers = map[string]string{extauthz.HeaderClientCertChain: forgedChain, extauthz.HeaderClientCert: ":Zm9v:"}
			resp, err := client.Check(context.Background(), tc.r.build())
			if err != nil {
				t.Fatal(err)
			}
			ok := resp.GetOkResponse()
			if ok == nil {
				t.Fatalf("denied: %v", resp.GetStatus())
			}
			set := headerMap(ok.GetHeaders())
			if set[extauthz.HeaderClientID] != tc.clientID {
				t.Fatalf("client id %q, want %s", set[extauthz.HeaderClientID], tc.clientID)
			}
			if !slices.Contains(ok.GetHeadersToRemove(), extauthz.HeaderClientCertChain) {
				t.Errorf("headers_to_remove %q: the client's %s reaches the upstream", ok.GetHeadersToRemove(), extauthz.HeaderClientCertChain)
			}
			if v, found := set[extauthz.HeaderClientCertChain]; found {
				t.Errorf("%s set to %q", extauthz.HeaderClientCertChain, v)
			}
		})
	}
}

// TestHTTPAuthzRemovesClientCertChain: the HTTP endpoint names client-cert-chain in
// x-envoy-auth-headers-to-remove (Envoy's http_service removes those upstream headers) on
// allow, with each certificate format, and never sends it.
func TestHTTPAuthzRemovesClientCertChain(t *testing.T) {
	f := newFixture(t)
	seq := func(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }
	for _, tc := range []struct {
		name, yaml string
		hdr        map[string]string
	}{
		{"xfcc", "", map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing),
			extauthz.HeaderClientCertChain: forgedChain, extauthz.HeaderClientCert: ":Zm9v:"}},
		// Here the proxy itself sets Client-Cert and Client-Cert-Chain for certbind; the upstream
		// still gets only certbind's verified leaf.
		{"rfc9440", "http_authz: {certificate_format: rfc9440}\n", map[string]string{
			extauthz.HeaderClientCert: seq(f.billing.DER()), extauthz.HeaderClientCertChain: seq(f.inter.DER())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := f.httpServer(t, baseConfig+tc.yaml)
			tc.hdr["content-type"] = "application/x-www-form-urlencoded"
			resp := send(t, "POST", srv.URL+"/oauth2/token", tc.hdr, "client_id=billing")
			if resp.StatusCode != 200 || resp.Header.Get(extauthz.HeaderClientID) != "billing" {
				t.Fatalf("%d %s, want an allow for billing", resp.StatusCode, resp.Header.Get("x-certbind-reason"))
			}
			remove := strings.Split(resp.Header.Get("x-envoy-auth-headers-to-remove"), ",")
			if !slices.Contains(remove, extauthz.HeaderClientCertChain) {
				t.Errorf("x-envoy-auth-headers-to-remove %q: the client's %s reaches the upstream", remove, extauthz.HeaderClientCertChain)
			}
			if v := resp.Header.Values(extauthz.HeaderClientCertChain); len(v) != 0 {
				t.Errorf("%s sent: %q", extauthz.HeaderClientCertChain, v)
			}
			if got, want := resp.Header.Get(extauthz.HeaderClientCert), seq(f.billing.DER()); got != want {
				t.Errorf("%s %q, want certbind's %q", extauthz.HeaderClientCert, got, want)
			}
		})
	}
}

// TestAllowedOwnsClientCertChain: every allow, whatever the mode, removes client-cert-chain.
func TestAllowedOwnsClientCertChain(t *testing.T) {
	for _, d := range []policy.Decision{
		{Allow: true, Mode: policy.ModeClientAuth, ClientID: "billing", Certificate: &policy.Presented{X5tS256: "t", ClientCert: ":ZGVy:"}},
		{Allow: true, Mode: policy.ModeIdentity, ClientID: "svc"},
		{Allow: true, Mode: policy.ModeBoundToken, Subject: "s", Scopes: []string{"read"}},
	} {
		set, remove := extauthz.Allowed(d, policy.Response{})
		if !slices.Contains(remove, extauthz.HeaderClientCertChain) {
			t.Errorf("%s: remove %q lacks %s", d.Mode, remove, extauthz.HeaderClientCertChain)
		}
		for _, h := range set {
			if h.Name == extauthz.HeaderClientCertChain {
				t.Errorf("%s: sets %s", d.Mode, h.Name)
			}
		}
	}
}
