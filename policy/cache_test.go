package policy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// clockEngine is an engine whose clock the test moves.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// cacheEvents records cache events as "cache:event".
type cacheEvents struct{ events *[]string }

func (o cacheEvents) ObserveFetch(string, string, error)  {}
func (o cacheEvents) ObserveSkippedKeys(string, []string) {}
func (o cacheEvents) ObserveCache(cache, event string) {
	*o.events = append(*o.events, cache+":"+event)
}

func engineAt(t testing.TB, w *world, yaml string, c *clock, events *[]string) *policy.Engine {
	t.Helper()
	p := w.write(t, "certbind.yaml", []byte(yaml))
	cfg, err := policy.LoadConfig(p, policy.LoadOptions{Observer: cacheEvents{events}})
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewEngine(policy.EngineConfig{Config: cfg, Now: c.Now})
}

func TestChainCacheBounds(t *testing.T) {
	w := newWorld(t)
	short := w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), pki.Validity(t0.Add(-time.Hour), t0.Add(10*time.Minute)))
	c := &clock{now: t0}
	var events []string
	// A TTL longer than the certificate's life, so notAfter is what bounds the entry.
	e := engineAt(t, w, exampleConfig+"cache: {ttl: 1h}\n", c, &events)
	in := policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, short)}
	for i := 0; i < 4; i++ {
		if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonOK {
			t.Fatalf("%s (%v)", d.Reason, d.Cause)
		}
	}
	// The second verification is admitted to the cache (package admission), which answers
	// from then on.
	if got := count(events, "chains:hit"); got != 2 {
		t.Errorf("%d chain cache hits over four identical checks, want 2 (events %v)", got, events)
	}
	// Past the certificate's notAfter the cached success is not served.
	c.now = t0.Add(11 * time.Minute)
	if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonCertificateExpired {
		t.Fatalf("after notAfter: %s, want certificate_expired", d.Reason)
	}
}

func TestChainCacheHonoursCRLNextUpdate(t *testing.T) {
	w := newWorld(t)
	w.write(t, "pki/inter.crl", w.inter.CRLPEM(t0.Add(-time.Hour), t0.Add(5*time.Minute)))
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, strings.Replace(exampleConfig, "crl_files: []", "crl_files: [pki/inter.crl]", 1)+"cache: {ttl: 1h}\n", c, &events)
	in := policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, w.billing)}
	for i := 0; i < 3; i++ {
		if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonOK {
			t.Fatalf("%s (%v)", d.Reason, d.Cause)
		}
	}
	if got := count(events, "chains:hit"); got != 1 {
		t.Fatalf("%d chain cache hits, want 1 (events %v)", got, events)
	}
	c.now = t0.Add(6 * time.Minute) // the CRL is now stale: the cached allow must not survive it
	if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonCRLExpired {
		t.Fatalf("after the CRL's nextUpdate: %s, want crl_expired", d.Reason)
	}
}

func TestReloadNeverServesStaleAllow(t *testing.T) {
	w := newWorld(t)
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, exampleConfig, c, &events)
	in := policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, w.billing)}
	for i := 0; i < 3; i++ {
		if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonOK {
			t.Fatalf("%s", d.Reason)
		}
	}
	if got := count(events, "chains:hit"); got != 1 {
		t.Fatalf("%d chain cache hits, want 1 (events %v)", got, events)
	}
	// The operator replaces the trust anchor: the same certificate must now fail.
	p := w.write(t, "certbind.yaml", []byte(`trust_anchors: [pki/other-ca.pem]
clients:
  - client_id: billing
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_subject_dn: "CN=billing,OU=Payments,O=Example Corp,C=SE"
`))
	cfg, err := policy.LoadConfig(p, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(cfg)
	if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonCertificateUntrusted {
		t.Fatalf("after the trust change: %s, want certificate_untrusted", d.Reason)
	}
}

func TestTokenCacheBounds(t *testing.T) {
	w := newWorld(t)
	k := newIssuerKeys(t)
	w.write(t, "pki/as.jwks.json", k.jwks(t))
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, tokenConfig("jwks_file: pki/as.jwks.json", "required"), c, &events)
	cl := claims(w.billing)
	cl["exp"] = t0.Add(2 * time.Minute).Unix()
	tok := k.sign(t, "ec-1", nil, cl)
	check := func(cert *pki.Cert) policy.Reason {
		return e.Decide(context.Background(), policy.Input{ModeHint: "bound_token", Request: apiRequest(tok), Certificate: presented(t, cert)}).Reason
	}
	// The second verification is admitted to the cache (package admission); the third is a hit.
	for i := 0; i < 2; i++ {
		if r := check(w.billing); r != policy.ReasonOK || count(events, "tokens:hit") != 0 {
			t.Fatalf("%s, events %v", r, events)
		}
	}
	if r := check(w.billing); r != policy.ReasonOK || count(events, "tokens:hit") != 1 {
		t.Fatalf("%s, events %v", r, events)
	}
	// A cached token is still checked against this request's certificate.
	if r := check(w.reports); r != policy.ReasonTokenBindingMismatch {
		t.Fatalf("cached token, other certificate: %s", r)
	}
	// Past exp (and leeway): not served from the cache.
	c.now = t0.Add(3 * time.Minute)
	if r := check(w.billing); r != policy.ReasonTokenExpired {
		t.Fatalf("after exp: %s, want token_expired", r)
	}
}

func count(events []string, want string) int {
	n := 0
	for _, e := range events {
		if e == want {
			n++
		}
	}
	return n
}

// TestChainCacheWithStaleIgnoredCRL: a CRL past nextUpdate under crl_expired: ignore does not
// bound the cached allow, which would otherwise already be expired and never hit.
func TestChainCacheWithStaleIgnoredCRL(t *testing.T) {
	w := newWorld(t)
	w.write(t, "pki/stale.crl", w.inter.CRLPEM(t0.Add(-3*time.Hour), t0.Add(-time.Hour)))
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, strings.Replace(exampleConfig, "crl_files: []", "crl_files: [pki/stale.crl]", 1)+"crl_expired: ignore\n", c, &events)
	in := policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, w.billing)}
	for i := 0; i < 4; i++ {
		if d := e.Decide(context.Background(), in); d.Reason != policy.ReasonOK {
			t.Fatalf("%s (%v)", d.Reason, d.Cause)
		}
	}
	if got := count(events, "chains:hit"); got != 2 {
		t.Errorf("%d chain cache hits over four identical checks, want 2 (events %v)", got, events)
	}
}

// Presenteds built by hand have no chain cache key: one verified never answers for another.
func TestChainCachePresentedByHand(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, exampleConfig)
	byHand := func(c *pki.Cert) policy.Input {
		p := presented(t, c)
		return policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"),
			Certificate: &policy.Presented{Leaf: p.Leaf, Intermediates: p.Intermediates, Thumbprint: p.Thumbprint, Subject: p.Subject}}
	}
	wantReason(t, e, byHand(w.billing), policy.ReasonOK)
	wantReason(t, e, byHand(w.stranger), policy.ReasonCertificateUntrusted)
}
