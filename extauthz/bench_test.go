package extauthz_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

// BenchmarkCheckWarm is the whole adapter without gRPC: a CheckRequest as Envoy builds it (peer
// certificate, XFCC with Cert and Chain, a bound token) read, decided and rendered, the same
// certificate and token every time, as real clients send them.
func BenchmarkCheckWarm(b *testing.B) {
	for _, mode := range []string{"bound_token", "client_auth", "identity"} {
		b.Run(mode, func(b *testing.B) {
			f := newFixture(b)
			s := newSigner(b, f)
			cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1) + tokensConfig
			f.write(b, "certbind.yaml", []byte(cfg))
			c, err := policy.LoadConfig(f.dir+"/certbind.yaml", policy.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			srv := extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: c, Now: nowT0})})
			r := req{mode: mode, peer: f.billing, xfccHeader: envoyXFCC(f.billing), headers: map[string]string{}}
			switch mode {
			case "bound_token":
				r.path = "/api/things"
				r.headers["authorization"] = "Bearer " + s.token(b, f.billing, "read")
			case "client_auth":
				r.body = "grant_type=client_credentials&client_id=billing"
			}
			benchCheck(b, srv, r.build())
		})
	}
}

func benchCheck(b *testing.B, srv *extauthz.Server, cr *authv3.CheckRequest) {
	ctx := context.Background()
	if resp, err := srv.Check(ctx, cr); err != nil || resp.GetOkResponse() == nil {
		b.Fatalf("%v %v", resp.GetStatus(), err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, _ := srv.Check(ctx, cr); resp.GetOkResponse() == nil {
			b.Fatal(resp.GetStatus())
		}
	}
}
