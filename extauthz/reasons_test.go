package extauthz

import (
	"testing"

	"github.com/certbind/certbind/policy"
	"google.golang.org/grpc/codes"
)

// TestEveryReasonIsMapped: every reason has a description and a class whose gRPC code is OK
// exactly for ReasonOK, and every deny renders a non-2xx status.
func TestEveryReasonIsMapped(t *testing.T) {
	for _, r := range policy.Reasons() {
		if (r == policy.ReasonOK) != (grpcCode(r.Class()) == codes.OK) {
			t.Errorf("reason %q maps to gRPC %s", r, grpcCode(r.Class()))
		}
		if r.Description() == string(r) || r.Description() == "" {
			t.Errorf("reason %q has no description", r)
		}
		if r == policy.ReasonOK {
			continue
		}
		for _, m := range []policy.Mode{"", policy.ModeClientAuth, policy.ModeIdentity, policy.ModeBoundToken} {
			if st := Denial(policy.Decision{Reason: r, Mode: m}, policy.Response{}).Status; st < 400 {
				t.Errorf("reason %q in mode %q renders status %d", r, m, st)
			}
		}
	}
	if got := grpcCode(policy.Reason("no_such_reason").Class()); got != codes.PermissionDenied {
		t.Errorf("an unknown reason maps to gRPC %s", got)
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
