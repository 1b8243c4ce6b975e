package extauthz_test

import (
	"encoding/base64"
	"testing"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

// TestHTTPAuthzPartialBody: Envoy's http_service with with_request_body and
// allow_partial_message sets x-envoy-auth-partial-body: true when it cut the body. A client_id
// beyond the cut is invisible, so client_auth must refuse the request as the gRPC path does.
func TestHTTPAuthzPartialBody(t *testing.T) {
	f := newFixture(t)
	srv := f.httpServer(t, baseConfig)
	for _, tc := range []struct {
		name, partial string
		status        int
		reason        policy.Reason
	}{
		{"cut body", "true", 400, policy.ReasonRequestMalformed},
		{"whole body", "false", 200, policy.ReasonOK},
		{"no header", "", 200, policy.ReasonOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"x-forwarded-client-cert": envoyXFCC(f.billing), "content-type": "application/x-www-form-urlencoded"}
			if tc.partial != "" {
				hdr["x-envoy-auth-partial-body"] = tc.partial
			}
			// The body Envoy forwarded: the client's second client_id lay beyond the cut.
			resp := send(t, "POST", srv.URL+"/oauth2/token", hdr, "grant_type=client_credentials&client_id=billing")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Header.Get("x-certbind-reason"), tc.status)
			}
			if tc.status == 200 {
				if got := resp.Header.Get(extauthz.HeaderClientID); got != "billing" {
					t.Errorf("client id %q", got)
				}
				return
			}
			if got := resp.Header.Get("x-certbind-reason"); got != string(tc.reason) {
				t.Errorf("reason %q, want %s", got, tc.reason)
			}
			if got := resp.Header.Get("x-certbind-error"); got != "invalid_request" {
				t.Errorf("error %q, want invalid_request", got)
			}
		})
	}
}

// TestHTTPAuthzCertificateHeaderPresence: a present-but-empty certificate header and an absent
// one are different inputs with different answers; the certificate cache must not hand one the
// other's result, in either order.
func TestHTTPAuthzCertificateHeaderPresence(t *testing.T) {
	f := newFixture(t)
	seq := func(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }
	type request struct {
		name   string
		hdr    map[string]string
		status int
		reason policy.Reason
	}
	for _, tc := range []struct {
		name, yaml string
		a, b       request
	}{
		{"xfcc", "", // an empty XFCC is malformed; no XFCC means no certificate
			request{"empty x-forwarded-client-cert", map[string]string{"x-forwarded-client-cert": ""}, 401, policy.ReasonXFCCMalformed},
			request{"no x-forwarded-client-cert", map[string]string{}, 401, policy.ReasonNoCertificate}},
		{"rfc9440 chain", "intermediates: [inter.pem]\nhttp_authz: {certificate_format: rfc9440}\n",
			request{"empty client-cert-chain", map[string]string{"client-cert": seq(f.billing.DER()), "client-cert-chain": ""}, 401, policy.ReasonCertificateMalformed},
			request{"no client-cert-chain", map[string]string{"client-cert": seq(f.billing.DER())}, 200, policy.ReasonOK}},
	} {
		for _, order := range [][2]request{{tc.a, tc.b}, {tc.b, tc.a}} {
			t.Run(tc.name+": "+order[0].name+" first", func(t *testing.T) {
				srv := f.httpServer(t, baseConfig+tc.yaml) // a fresh certificate cache
				// The first request twice: its second reading is admitted to the cache, which
				// must not answer the other.
				for _, r := range []request{order[0], order[0], order[1]} {
					hdr := map[string]string{"content-type": "application/x-www-form-urlencoded"}
					for k, v := range r.hdr {
						hdr[k] = v
					}
					resp := send(t, "POST", srv.URL+"/oauth2/token", hdr, "client_id=billing")
					reason := policy.Reason(resp.Header.Get("x-certbind-reason"))
					if resp.StatusCode == 200 {
						reason = policy.ReasonOK
					}
					if resp.StatusCode != r.status || reason != r.reason {
						t.Errorf("%s: %d %s, want %d %s", r.name, resp.StatusCode, reason, r.status, r.reason)
					}
				}
			})
		}
	}
}
