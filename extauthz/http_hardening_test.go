package extauthz_test

import (
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
