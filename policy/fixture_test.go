package policy_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// t0 is the fixed "now" of these tests: certificates are minted around it and the engine's
// clock is pinned to it, so expiry is tested without sleeping.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type world struct {
	dir              string
	root, inter      *pki.Cert
	otherRoot        *pki.Cert
	billing, reports *pki.Cert // tls_client_auth: subject DN; SAN URI
	svc              *pki.Cert // SAN DNS
	partner          *pki.Cert // self-signed, pinned
	stranger         *pki.Cert // chains to otherRoot
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	w.root = pki.NewRoot("Test Root", win)
	w.inter = w.root.Intermediate("Test Intermediate", win)
	w.otherRoot = pki.NewRoot("Other Root", win)
	w.billing = w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), win)
	w.reports = w.inter.Leaf("reports", pki.URI("spiffe://example.org/reports"), win)
	w.svc = w.inter.Leaf("svc", pki.DNS("svc.example.org"), win)
	w.partner = pki.SelfSigned("partner", win)
	w.stranger = w.otherRoot.Leaf("stranger", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), win)
	w.write(t, "pki/ca.pem", w.root.PEM())
	w.write(t, "pki/other-ca.pem", w.otherRoot.PEM())
	w.write(t, "pki/partner.jwks.json", jwksFor(t, w.partner))
	return w
}

func (w *world) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// jwksFor registers certificates as RFC 8705 section 2.2 asks: x5c in a JWK Set.
func jwksFor(t testing.TB, certs ...*pki.Cert) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, c := range certs {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: c.Cert.PublicKey, KeyID: c.Cert.Subject.CommonName,
			Certificates: []*x509.Certificate{c.Cert}, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exampleConfig is the configuration from the README and issue #2; it must load as is.
const exampleConfig = `trust_anchors: [pki/ca.pem]
crl_files: []
xfcc: { elements: single }
clients:
  - client_id: billing
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_subject_dn: "CN=billing,OU=Payments,O=Example Corp,C=SE"
  - client_id: reports
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_san_uri: "spiffe://example.org/reports"
  - client_id: partner
    token_endpoint_auth_method: self_signed_tls_client_auth
    jwks_file: pki/partner.jwks.json
routes:
  - { path_prefix: /oauth2/token, mode: client_auth }
  - { path_prefix: /internal/, mode: identity }
`

func (w *world) load(t testing.TB, yaml string) *policy.Config {
	t.Helper()
	p := w.write(t, "certbind.yaml", []byte(yaml))
	cfg, err := policy.LoadConfig(p, policy.LoadOptions{})
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

func (w *world) engine(t testing.TB, yaml string) *policy.Engine {
	return policy.NewEngine(policy.EngineConfig{Config: w.load(t, yaml), Now: func() time.Time { return t0 }})
}

func presented(t testing.TB, c *pki.Cert) *policy.Presented {
	t.Helper()
	chain := c.ChainDER()
	p, err := policy.ParsePresented(chain[0], chain[1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tokenRequest(clientID string) policy.Request {
	return policy.Request{Method: "POST", Path: "/oauth2/token",
		Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"},
		Body:    []byte("grant_type=client_credentials&client_id=" + clientID)}
}

func decide(e *policy.Engine, in policy.Input) policy.Decision {
	return e.Decide(context.Background(), in)
}
