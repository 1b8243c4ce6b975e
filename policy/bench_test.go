package policy_test

import (
	"context"
	"testing"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// The decision path without gRPC, warm: the same certificate and token again and again, as
// real clients send them. Targets: under 5 µs and 15 allocations per decision.

func benchWorld(b *testing.B) (*world, *issuerKeys, *policy.Engine) {
	w := newWorld(b)
	k := newIssuerKeys(b)
	w.write(b, "pki/as.jwks.json", k.jwks(b))
	return w, k, w.engine(b, tokenConfig("jwks_file: pki/as.jwks.json", "required"))
}

func BenchmarkDecideBoundTokenWarm(b *testing.B) {
	w, k, e := benchWorld(b)
	in := policy.Input{ModeHint: "bound_token", Request: apiRequest(k.sign(b, "ec-1", nil, claims(w.billing))), Certificate: presented(b, w.billing)}
	benchDecide(b, e, in)
}

func BenchmarkDecideClientAuthWarm(b *testing.B) {
	w, _, e := benchWorld(b)
	in := policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(b, w.billing)}
	benchDecide(b, e, in)
}

func BenchmarkDecideIdentityWarm(b *testing.B) {
	w, _, e := benchWorld(b)
	in := policy.Input{ModeHint: "identity", Request: policy.Request{Path: "/internal/x"}, Certificate: presented(b, w.reports)}
	benchDecide(b, e, in)
}

// Cold: a new certificate and a new bound token on every decision, so nothing is cached: a
// token signature check each time (bound_token), or a chain verification (client_auth).
func BenchmarkDecideBoundTokenCold(b *testing.B) {
	w, k, e := benchWorld(b)
	ins := coldInputs(b, w, func(c *pki.Cert) policy.Input {
		return policy.Input{ModeHint: "bound_token", Request: apiRequest(k.sign(b, "ec-1", nil, claims(c))), Certificate: presented(b, c)}
	})
	benchCold(b, e, ins)
}

func BenchmarkDecideClientAuthCold(b *testing.B) {
	w, _, e := benchWorld(b)
	ins := coldInputs(b, w, func(c *pki.Cert) policy.Input {
		return policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(b, c)}
	})
	benchCold(b, e, ins)
}

func coldInputs(b *testing.B, w *world, mk func(*pki.Cert) policy.Input) []policy.Input {
	n := b.N
	if n > 20000 {
		n = 20000 // more than the caches hold
	}
	ins := make([]policy.Input, n)
	for i := range ins {
		ins[i] = mk(w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE")))
	}
	return ins
}

func benchCold(b *testing.B, e *policy.Engine, ins []policy.Input) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := e.Decide(context.Background(), ins[i%len(ins)]); !d.Allow {
			b.Fatalf("%s %v", d.Reason, d.Cause)
		}
	}
}

func benchDecide(b *testing.B, e *policy.Engine, in policy.Input) {
	b.Helper()
	ctx := context.Background()
	if d := e.Decide(ctx, in); !d.Allow {
		b.Fatalf("%s %v", d.Reason, d.Cause)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := e.Decide(ctx, in); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}
