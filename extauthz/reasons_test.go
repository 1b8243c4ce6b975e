package extauthz

import (
	"testing"

	"github.com/certbind/certbind/policy"
	"google.golang.org/grpc/codes"
)

func TestEveryReasonIsMapped(t *testing.T) {
	for _, r := range policy.Reasons() {
		m, ok := reasonTable[r]
		if !ok {
			t.Errorf("reason %q has no entry in reasonTable", r)
			continue
		}
		if (r == policy.ReasonOK) != (m.code == codes.OK) {
			t.Errorf("reason %q maps to gRPC %s", r, m.code)
		}
		if r.Description() == string(r) {
			t.Errorf("reason %q has no description", r)
		}
	}
	if len(reasonTable) != len(policy.Reasons()) {
		t.Errorf("reasonTable has %d entries, policy.Reasons %d: a stale entry", len(reasonTable), len(policy.Reasons()))
	}
}

// TestRenderUnavailable: a bound_token decision certbind cannot make now (keys or introspection
// down) is a 503 with OAuth's temporarily_unavailable and gRPC Unavailable, and no
// WWW-Authenticate challenge: the token may be fine, so the client must not be told otherwise.
func TestRenderUnavailable(t *testing.T) {
	d := policy.Decision{Reason: policy.ReasonTokenUnverifiable, Mode: policy.ModeBoundToken}
	rs := policy.Response{Realm: "api"}
	den := Denial(d, rs)
	if den.Status != 503 || den.OAuthError != "temporarily_unavailable" ||
		den.Body != `{"error":"temporarily_unavailable","error_description":"`+policy.ReasonTokenUnverifiable.Description()+`"}` {
		t.Errorf("denial %+v", den)
	}
	for _, h := range den.Headers {
		if h.Name == "www-authenticate" {
			t.Errorf("a challenge on 503: %q", h.Value)
		}
	}
	resp := Render(d, rs)
	if resp.GetStatus().GetCode() != int32(codes.Unavailable) || resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Errorf("CheckResponse status %v, HTTP %v", resp.GetStatus(), resp.GetDeniedResponse().GetStatus())
	}
}
