package policy_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// The anchored path cache (policy/anchoredpath.go): a new leaf under an intermediate already
// verified is verified under that intermediate alone. Each test below makes the cache hold the
// path of an intermediate, then shows a new leaf that must still be denied: each fails if the
// shortcut skips the check it names.

const billingDN = "CN=billing,OU=Payments,O=Example Corp,C=SE"

func billingAuth(t testing.TB, c *pki.Cert) policy.Input {
	return policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, c)}
}

func wantReason(t *testing.T, e *policy.Engine, in policy.Input, want policy.Reason) {
	t.Helper()
	if d := e.Decide(context.Background(), in); d.Reason != want {
		t.Fatalf("%s (%v), want %s", d.Reason, d.Cause, want)
	}
}

// configFor is exampleConfig trusting anchorFile instead.
func configFor(anchorFile string) string {
	return strings.Replace(exampleConfig, "trust_anchors: [pki/ca.pem]", "trust_anchors: ["+anchorFile+"]", 1)
}

func TestAnchoredPathIsUsed(t *testing.T) {
	w := newWorld(t)
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, exampleConfig, c, &events)
	wantReason(t, e, billingAuth(t, w.billing), policy.ReasonOK)
	if count(events, "paths:hit") != 0 {
		t.Fatalf("a path hit before any path was verified: %v", events)
	}
	// A second leaf: the intermediate's path is reused.
	wantReason(t, e, billingAuth(t, w.inter.Leaf("billing", pki.Subject(billingDN))), policy.ReasonOK)
	if count(events, "paths:hit") != 1 {
		t.Fatalf("no path hit for a new leaf under a verified intermediate: %v", events)
	}
	// The leaf's own signature is still checked: a leaf naming the intermediate as issuer but
	// signed by another key.
	impostor := pki.NewRoot("Test Intermediate", pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))).Leaf("billing", pki.Subject(billingDN))
	p, err := policy.ParsePresented(impostor.DER(), w.billing.ChainDER()[1:2])
	if err != nil {
		t.Fatal(err)
	}
	wantReason(t, e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: p}, policy.ReasonCertificateUntrusted)
	// The leaf's extended key usage is still checked.
	wantReason(t, e, billingAuth(t, w.inter.Leaf("billing", pki.Subject(billingDN), pki.ServerAuth())), policy.ReasonCertificateUsage)
	// And its validity.
	c.now = t0.Add(2 * time.Hour)
	wantReason(t, e, billingAuth(t, w.inter.Leaf("billing", pki.Subject(billingDN), pki.Validity(t0.Add(-time.Hour), t0.Add(time.Hour)))), policy.ReasonCertificateExpired)
}

// An intermediate revoked (online) after its path was remembered: the next leaf is denied.
func TestAnchoredPathIntermediateRevoked(t *testing.T) {
	w := newWorld(t)
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	rootResp := newOCSPResponder(t, w.root)
	inter := w.root.Intermediate("Revocable Intermediate", win, pki.OCSPServers(rootResp.URL))
	interResp := newOCSPResponder(t, inter)
	leaf := func() *pki.Cert {
		return inter.Leaf("billing", pki.Subject(billingDN), pki.OCSPServers(interResp.URL), win)
	}
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, "revocation: {mode: ocsp, max_cache_ttl: 1m}\ncache: {ttl: 1h}\n"+strings.Replace(exampleConfig, "crl_files: []\n", "", 1), c, &events)
	wantReason(t, e, billingAuth(t, leaf()), policy.ReasonOK)
	wantReason(t, e, billingAuth(t, leaf()), policy.ReasonOK)
	if count(events, "paths:hit") != 1 {
		t.Fatalf("no path hit: %v", events)
	}
	rootResp.mu.Lock()
	rootResp.revoked[inter.Cert.SerialNumber.String()] = true
	rootResp.mu.Unlock()
	c.now = t0.Add(2 * time.Minute) // past the answers' cache time
	wantReason(t, e, billingAuth(t, leaf()), policy.ReasonCertificateRevoked)
}

// A certificate above the intermediate expires before it: the remembered path ends with it.
func TestAnchoredPathUpperExpired(t *testing.T) {
	w := newWorld(t)
	upper := w.root.Intermediate("Upper", pki.Validity(t0.Add(-time.Hour), t0.Add(time.Hour)))
	lower := upper.Intermediate("Lower", pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour)))
	leaf := func() *pki.Cert {
		return lower.Leaf("billing", pki.Subject(billingDN), pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour)))
	}
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, exampleConfig+"cache: {ttl: 24h}\n", c, &events)
	wantReason(t, e, billingAuth(t, leaf()), policy.ReasonOK)
	wantReason(t, e, billingAuth(t, leaf()), policy.ReasonOK)
	if count(events, "paths:hit") != 1 {
		t.Fatalf("no path hit: %v", events)
	}
	c.now = t0.Add(2 * time.Hour)
	wantReason(t, e, billingAuth(t, leaf()), policy.ReasonCertificateInvalid)
}

// permittedDNS is a nameConstraints extension permitting the DNS subtree domain.
func permittedDNS(domain string) pki.Option {
	type subtree struct{ Base asn1.RawValue }
	var trees struct {
		Permitted []subtree `asn1:"optional,tag:0"`
	}
	trees.Permitted = []subtree{{asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(domain)}}}
	v, err := asn1.Marshal(trees)
	if err != nil {
		panic(err)
	}
	return pki.Extension(pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 30}, Critical: true, Value: v})
}

// Name constraints above the intermediate (DNS, enforced by crypto/x509, and directoryName,
// enforced by certbind) still bind every new leaf.
func TestAnchoredPathConstrainedAbove(t *testing.T) {
	for _, tc := range []struct {
		name      string
		root      pki.Option
		good, bad []pki.Option
	}{
		{"DNS", permittedDNS("example.org"),
			[]pki.Option{pki.Subject(billingDN), pki.DNS("a.example.org")},
			[]pki.Option{pki.Subject(billingDN), pki.DNS("evil.test")}},
		{"directoryName", pki.PermittedDirectoryNames(true, "O=Example Corp,C=SE"),
			[]pki.Option{pki.Subject(billingDN)},
			[]pki.Option{pki.Subject("CN=billing,OU=Payments,O=Evil Corp,C=SE")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			root := pki.NewRoot("Constrained Root", tc.root)
			inter := root.Intermediate("Test Intermediate", pki.Subject("CN=Test Intermediate,O=Example Corp,C=SE"))
			w.write(t, "pki/constrained.pem", root.PEM())
			e := policy.NewEngine(policy.EngineConfig{Config: w.load(t, configFor("pki/constrained.pem"))})
			wantReason(t, e, billingAuth(t, inter.Leaf("billing", tc.good...)), policy.ReasonOK)
			wantReason(t, e, billingAuth(t, inter.Leaf("billing", tc.good...)), policy.ReasonOK)
			wantReason(t, e, billingAuth(t, inter.Leaf("billing", tc.bad...)), policy.ReasonCertificateInvalid)
		})
	}
}

// An intermediate that requires an explicit policy: a leaf without one is refused, though a
// chain ending at the intermediate would accept it.
func TestAnchoredPathPolicyConstraints(t *testing.T) {
	w := newWorld(t)
	policyOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	policies := func() pki.Option {
		v, err := asn1.Marshal([]struct{ ID asn1.ObjectIdentifier }{{policyOID}})
		if err != nil {
			panic(err)
		}
		return pki.Extension(pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 32}, Value: v})
	}
	// policyConstraints { requireExplicitPolicy [0] 0 }
	require := pki.Extension(pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 36}, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, 0x00}})
	inter := w.root.Intermediate("Policy Intermediate", policies(), require)
	e := w.engine(t, exampleConfig)
	wantReason(t, e, billingAuth(t, inter.Leaf("billing", pki.Subject(billingDN), policies())), policy.ReasonOK)
	wantReason(t, e, billingAuth(t, inter.Leaf("billing", pki.Subject(billingDN), policies())), policy.ReasonOK)
	wantReason(t, e, billingAuth(t, inter.Leaf("billing", pki.Subject(billingDN))), policy.ReasonCertificateInvalid)
}

// A path verified to the global anchors is not one to a client's own anchors.
func TestAnchoredPathPerClientAnchors(t *testing.T) {
	w := newWorld(t)
	cfg := exampleConfig + `  - client_id: partner-pki
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_subject_dn: "CN=partner,O=Partner"
    trust_anchors: [pki/other-ca.pem]
`
	cfg = strings.Replace(cfg, "routes:\n  - { path_prefix: /oauth2/token, mode: client_auth }\n  - { path_prefix: /internal/, mode: identity }\n", "", 1) +
		"routes:\n  - { path_prefix: /oauth2/token, mode: client_auth }\n"
	c := &clock{now: t0}
	var events []string
	e := engineAt(t, w, cfg, c, &events)
	wantReason(t, e, billingAuth(t, w.billing), policy.ReasonOK)
	in := policy.Input{ModeHint: "client_auth", Request: tokenRequest("partner-pki"), Certificate: presented(t, w.inter.Leaf("partner", pki.Subject("CN=partner,O=Partner")))}
	wantReason(t, e, in, policy.ReasonCertificateUntrusted)
	// A leaf under the other anchor's own intermediate is fine, twice.
	otherInter := w.otherRoot.Intermediate("Test Intermediate")
	for range 2 {
		in.Certificate = presented(t, otherInter.Leaf("partner", pki.Subject("CN=partner,O=Partner")))
		wantReason(t, e, in, policy.ReasonOK)
	}
	if count(events, "paths:hit") != 1 {
		t.Fatalf("path hits %d, want 1: %v", count(events, "paths:hit"), events)
	}
}

// A reload starts with no remembered path: an anchor the new configuration no longer trusts,
// or an intermediate its CRL revokes, is refused at once.
func TestAnchoredPathReload(t *testing.T) {
	w := newWorld(t)
	w.write(t, "pki/root.crl", w.root.CRLPEM(t0.Add(-time.Hour), t0.Add(time.Hour), w.inter))
	for _, tc := range []struct {
		name, cfg string
		want      policy.Reason
	}{
		{"anchor removed", configFor("pki/other-ca.pem"), policy.ReasonCertificateUntrusted},
		{"intermediate revoked", strings.Replace(exampleConfig, "crl_files: []", "crl_files: [pki/root.crl]", 1), policy.ReasonCertificateRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: t0}
			var events []string
			e := engineAt(t, w, exampleConfig+"cache: {ttl: 1h}\n", c, &events)
			wantReason(t, e, billingAuth(t, w.billing), policy.ReasonOK)
			wantReason(t, e, billingAuth(t, w.inter.Leaf("billing", pki.Subject(billingDN))), policy.ReasonOK)
			if count(events, "paths:hit") != 1 {
				t.Fatalf("no path hit: %v", events)
			}
			e.Swap(w.load(t, tc.cfg))
			wantReason(t, e, billingAuth(t, w.inter.Leaf("billing", pki.Subject(billingDN))), tc.want)
		})
	}
}

// A Presented built by hand (its exported fields only) still verifies, under the path too.
func TestAnchoredPathPresentedByHand(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, exampleConfig)
	wantReason(t, e, billingAuth(t, w.billing), policy.ReasonOK)
	leaf := w.inter.Leaf("billing", pki.Subject(billingDN))
	p := presented(t, leaf)
	byHand := &policy.Presented{Leaf: p.Leaf, Intermediates: p.Intermediates, Thumbprint: p.Thumbprint, Subject: p.Subject}
	wantReason(t, e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: byHand}, policy.ReasonOK)
}
