package extauthz_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/bench"
	"github.com/certbind/certbind/tracing"
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

// BenchmarkCheckTraced is BenchmarkCheckWarm's bound_token check with tracing: off, every
// check sampled (spans to an exporter that drops them, through the SDK's batch processor), and
// behind an unsampled traceparent with the default parent-based sampler.
func BenchmarkCheckTraced(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler // nil: tracing off
		flags   string
	}{
		{"off", nil, "01"},
		{"sampled", sdktrace.AlwaysSample(), "01"},
		{"unsampled-parent", sdktrace.ParentBased(sdktrace.AlwaysSample()), "00"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b)
			s := newSigner(b, f)
			cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1) + tokensConfig
			f.write(b, "certbind.yaml", []byte(cfg))
			c, err := policy.LoadConfig(f.dir+"/certbind.yaml", policy.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			conf := extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: c, Now: nowT0})}
			if tc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler), sdktrace.WithBatcher(discard{}))
				defer tp.Shutdown(context.Background())
				conf.Tracing = extauthz.Tracing{Tracer: tp.Tracer("bench"), Propagator: tracing.Disabled().Propagator}
			}
			r := req{mode: "bound_token", path: "/api/things", peer: f.billing, xfccHeader: envoyXFCC(f.billing), headers: map[string]string{
				"authorization": "Bearer " + s.token(b, f.billing, "read"),
				"traceparent":   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + tc.flags,
			}}
			benchCheck(b, extauthz.New(conf), r.build())
		})
	}
}

// discard is a span exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkCheckCold is the whole adapter on credentials never seen before, as certbind-bench's
// cold scenarios send them: a new leaf under a known intermediate on every check (with a new
// bound token in bound_token). Set up with certbind-bench's own fixture.
func BenchmarkCheckCold(b *testing.B) {
	for _, mode := range []bench.Mode{bench.ModeClientAuth, bench.ModeBoundToken} {
		b.Run(string(mode), func(b *testing.B) {
			now := time.Now()
			f, err := bench.NewFixture(b.TempDir(), now)
			if err != nil {
				b.Fatal(err)
			}
			c, err := policy.LoadConfig(f.ConfigPath(), policy.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			srv := extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: c, Now: func() time.Time { return now }})})
			n := min(b.N+1, 20000)
			pool, err := f.ColdPool(1, n)
			if err != nil {
				b.Fatal(err)
			}
			crs := make([]*authv3.CheckRequest, n)
			for i, cred := range pool {
				crs[i] = bench.NewRequest(cred, mode, uint64(i)).CheckRequest(now)
			}
			ctx := context.Background()
			if resp, err := srv.Check(ctx, crs[0]); err != nil || resp.GetOkResponse() == nil {
				b.Fatalf("%v %v", resp.GetStatus(), err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if resp, _ := srv.Check(ctx, crs[1+i%(n-1)]); resp.GetOkResponse() == nil {
					b.Fatal(resp.GetStatus())
				}
			}
		})
	}
}
