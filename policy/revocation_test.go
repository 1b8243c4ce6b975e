package policy_test

import (
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

// ocspResponder answers for the test intermediate: serials listed as revoked are revoked,
// everything else good; down makes it fail.
type ocspResponder struct {
	*httptest.Server
	mu      sync.Mutex
	issuer  *pki.Cert
	revoked map[string]bool
	down    bool
	hits    int
}

func newOCSPResponder(t *testing.T, issuer *pki.Cert) *ocspResponder {
	r := &ocspResponder{issuer: issuer, revoked: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *ocspResponder) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	if r.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(req.Body)
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: q.SerialNumber, ThisUpdate: t0.Add(-time.Minute), NextUpdate: t0.Add(time.Hour)}
	if r.revoked[q.SerialNumber.String()] {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, t0.Add(-time.Hour), ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(r.issuer.Cert, r.issuer.Cert, tmpl, r.issuer.Key.(crypto.Signer))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

func TestOnlineRevocation(t *testing.T) {
	w := newWorld(t)
	resp := newOCSPResponder(t, w.inter)
	subject := pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE")
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	good := w.inter.Leaf("billing", subject, pki.OCSPServers(resp.URL), win)
	revoked := w.inter.Leaf("billing", subject, pki.OCSPServers(resp.URL), win)
	noURL := w.inter.Leaf("billing", subject, win)
	resp.revoked[revoked.Cert.SerialNumber.String()] = true
	deadCert := w.inter.Leaf("billing", subject, pki.OCSPServers("http://127.0.0.1:1/ocsp"), win)

	base := strings.Replace(exampleConfig, "crl_files: []\n", "", 1)
	for _, tc := range []struct {
		name, cfg string
		cert      *pki.Cert
		client    string
		want      policy.Reason
	}{
		{"good", "revocation: {mode: ocsp}\n", good, "billing", policy.ReasonOK},
		{"revoked", "revocation: {mode: ocsp}\n", revoked, "billing", policy.ReasonCertificateRevoked},
		{"revoked under soft failure too", "revocation: {mode: ocsp, failure: soft}\n", revoked, "billing", policy.ReasonCertificateRevoked},
		{"responder unreachable, hard", "revocation: {mode: ocsp, timeout: 300ms}\n", deadCert, "billing", policy.ReasonRevocationUnknown},
		{"responder unreachable, soft", "revocation: {mode: ocsp, failure: soft, timeout: 300ms}\n", deadCert, "billing", policy.ReasonOK},
		{"no OCSP URL, hard", "revocation: {mode: ocsp}\n", noURL, "billing", policy.ReasonRevocationUnknown},
		{"revocation off", "", revoked, "billing", policy.ReasonOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := w.engine(t, tc.cfg+base)
			d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest(tc.client), Certificate: presented(t, tc.cert)})
			if d.Reason != tc.want {
				t.Fatalf("%s (%v), want %s", d.Reason, d.Cause, tc.want)
			}
		})
	}

	// A per-client policy: this client tolerates an unreachable responder, the global policy does not.
	t.Run("per-client soft failure", func(t *testing.T) {
		cfg := "revocation: {mode: ocsp, timeout: 300ms}\n" + strings.Replace(base, "    tls_client_auth_subject_dn: \"CN=billing,OU=Payments,O=Example Corp,C=SE\"\n",
			"    tls_client_auth_subject_dn: \"CN=billing,OU=Payments,O=Example Corp,C=SE\"\n    revocation_failure: soft\n", 1)
		e := w.engine(t, cfg)
		if d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, deadCert)}); d.Reason != policy.ReasonOK {
			t.Fatalf("%s (%v)", d.Reason, d.Cause)
		}
	})

	// A good answer is cached until its nextUpdate: the responder is asked once. The leaf comes
	// with and without its intermediate in turn (the intermediate is also configured), so the
	// chain cache misses twice and only the OCSP cache can spare the second request.
	t.Run("cached", func(t *testing.T) {
		w.write(t, "pki/inter.pem", w.inter.PEM())
		e := w.engine(t, "revocation: {mode: ocsp}\nintermediates: [pki/inter.pem]\n"+base)
		resp.mu.Lock()
		resp.hits = 0
		resp.mu.Unlock()
		other := w.inter.Leaf("billing", subject, pki.OCSPServers(resp.URL), win)
		leafOnly, err := policy.ParsePresented(other.DER(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range []*policy.Presented{presented(t, other), leafOnly, presented(t, other), leafOnly} {
			if d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: p}); d.Reason != policy.ReasonOK {
				t.Fatalf("check %d: %s (%v)", i, d.Reason, d.Cause)
			}
		}
		resp.mu.Lock()
		defer resp.mu.Unlock()
		if resp.hits != 1 {
			t.Errorf("%d OCSP requests for four checks of one certificate", resp.hits)
		}
	})
}

func TestRevocationConfigErrors(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct{ yaml, want string }{
		{"revocation: {mode: sometimes}\n", `revocation.mode: "sometimes"`},
		{"revocation: {failure: maybe}\n", `revocation.failure: "maybe"`},
		{"clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_file: pki/partner.jwks.json, revocation_failure: soft}\n", "clients[0].revocation_failure: self_signed_tls_client_auth certificates are pinned"},
		{"trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: b, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_dns: b, revocation_failure: never}\n", `clients[0].revocation_failure: "never"`},
	} {
		p := w.write(t, "bad.yaml", []byte(tc.yaml))
		if _, err := policy.LoadConfig(p, policy.LoadOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
