package extauthz_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
)

// FuzzCheck sends random CheckRequests through the whole adapter and policy. Invariants: no
// panic and no gRPC error with a configuration loaded; a response is allow or deny, never both;
// a deny carries a known reason and an HTTP status; an allow names a real certificate of the
// fixture (a fuzzer cannot forge one) and a registered client.
func FuzzCheck(f *testing.F) {
	fx := newFixture(f)
	s := newSigner(f, fx)
	cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1) + tokensConfig
	fx.write(f, "certbind.yaml", []byte(cfg))
	c, err := policy.LoadConfig(fx.dir+"/certbind.yaml", policy.LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	srv := extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: c, Now: nowT0})})
	genuine := map[string]bool{}
	for _, cert := range [][]byte{fx.billing.DER(), fx.other.DER(), fx.svc.DER()} {
		genuine[policy.ThumbprintOf(cert).String()] = true
	}
	registered := map[string]bool{"billing": true, "reports": true, "svc": true}
	known := map[string]bool{}
	for _, r := range policy.Reasons() {
		known[string(r)] = true
	}

	tok := s.token(f, fx.billing, "read")
	f.Add("client_auth", "/oauth2/token", "client_id=billing", "", envoyXFCC(fx.billing), "")
	f.Add("", "/oauth2/token", "client_id=billing", envoyxfcc.EncodePEM(fx.billing.PEM()), envoyXFCC(fx.billing), "")
	f.Add("bound_token", "/api/x", "", "", envoyXFCC(fx.billing), "Bearer "+tok)
	f.Add("identity", "/internal/x", "", envoyxfcc.EncodePEM(fx.svc.PEM()), "", "")
	f.Add("", "/api/x", "", "", envoyXFCC(fx.other)+","+envoyXFCC(fx.billing), "Bearer "+tok)
	f.Add("client_auth", "/oauth2/token?client_id=reports", "client_id=billing", "", `Hash=`+strings.Repeat("0", 64)+`;Cert="`, "Basic YmlsbGluZzo=")
	f.Fuzz(func(t *testing.T, mode, path, body, peer, xfccHeader, authz string) {
		h := map[string]string{":path": path, "content-type": "application/x-www-form-urlencoded"}
		if xfccHeader != "" {
			h["x-forwarded-client-cert"] = xfccHeader
		}
		if authz != "" {
			h["authorization"] = authz
		}
		cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Certificate: peer},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: path, Headers: h, Body: body}},
		}}
		if mode != "" {
			cr.Attributes.ContextExtensions = map[string]string{extauthz.ModeKey: mode}
		}
		resp, err := srv.Check(context.Background(), cr)
		if err != nil {
			t.Fatalf("gRPC error with a configuration loaded: %v", err)
		}
		ok, den := resp.GetOkResponse(), resp.GetDeniedResponse()
		if (ok == nil) == (den == nil) {
			t.Fatalf("response is neither or both allow and deny: %v", resp)
		}
		if ok != nil {
			if resp.GetStatus().GetCode() != int32(codes.OK) {
				t.Fatalf("allow with status %v", resp.GetStatus())
			}
			hdr := headerMap(ok.GetHeaders())
			tp := hdr[extauthz.HeaderThumbprint]
			if tp == "" || !genuine[tp] {
				t.Fatalf("allowed with certificate %q, not one of the fixture's", tp)
			}
			if id := hdr[extauthz.HeaderClientID]; id != "" && !registered[id] {
				t.Fatalf("allowed as unregistered client %q", id)
			}
			return
		}
		if resp.GetStatus().GetCode() == int32(codes.OK) || !known[resp.GetStatus().GetMessage()] {
			t.Fatalf("deny with status %v", resp.GetStatus())
		}
		if st := den.GetStatus().GetCode(); st < 400 || st > 599 {
			t.Fatalf("deny with HTTP %d", st)
		}
	})
}
