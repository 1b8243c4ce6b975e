package revocation

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/pki"
)

func TestCheckCRL(t *testing.T) {
	hour := time.Hour
	type crlCase struct {
		name   string
		leaf   func(e *env) *pki.Cert // default e.leaf()
		crl    func(t *testing.T, e *env, leaf *pki.Cert) []byte
		handle crlFunc // instead of crl
		st     Status
		causes []error
	}
	current := func(revoke bool, exts ...pkix.Extension) func(*testing.T, *env, *pki.Cert) []byte {
		return func(t *testing.T, e *env, leaf *pki.Cert) []byte {
			var rev []*pki.Cert
			if revoke {
				rev = append(rev, leaf)
			}
			return mkCRL(t, e.inter, t0.Add(-hour), t0.Add(hour), rev, exts...)
		}
	}
	tests := []crlCase{
		{name: "good", crl: current(false), st: Good},
		{name: "revoked", crl: current(true), st: Revoked},
		{name: "revoked, PEM", crl: func(t *testing.T, e *env, leaf *pki.Cert) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: mkCRL(t, e.inter, t0.Add(-hour), t0.Add(hour), []*pki.Cert{leaf})})
		}, st: Revoked},
		{name: "good among other revocations", crl: func(t *testing.T, e *env, _ *pki.Cert) []byte {
			return mkCRL(t, e.inter, t0.Add(-hour), t0.Add(hour), []*pki.Cert{e.leaf(), e.leaf(), e.leaf()})
		}, st: Good},
		{name: "expired CRL", crl: func(t *testing.T, e *env, _ *pki.Cert) []byte {
			return mkCRL(t, e.inter, t0.Add(-2*hour), t0.Add(-time.Minute), nil)
		}, st: Unknown, causes: []error{ErrStale}},
		{name: "expired CRL listing the certificate is still only unknown", crl: func(t *testing.T, e *env, leaf *pki.Cert) []byte {
			return mkCRL(t, e.inter, t0.Add(-2*hour), t0.Add(-time.Minute), []*pki.Cert{leaf})
		}, st: Unknown, causes: []error{ErrStale}},
		{name: "thisUpdate in the future", crl: func(t *testing.T, e *env, _ *pki.Cert) []byte {
			return mkCRL(t, e.inter, t0.Add(hour), t0.Add(2*hour), nil)
		}, st: Unknown, causes: []error{ErrStale}},
		{name: "signed by another key under the issuer's name", crl: func(t *testing.T, _ *env, leaf *pki.Cert) []byte {
			return mkCRL(t, pki.NewRoot("Test Inter"), t0.Add(-hour), t0.Add(hour), []*pki.Cert{leaf})
		}, st: Unknown, causes: []error{ErrSignature}},
		{name: "CRL of another issuer", crl: func(t *testing.T, _ *env, leaf *pki.Cert) []byte {
			return mkCRL(t, pki.NewRoot("Other CA"), t0.Add(-hour), t0.Add(hour), []*pki.Cert{leaf})
		}, st: Unknown, causes: []error{ErrMismatch}},
		{name: "20 MB CRL with Content-Length", handle: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "20971520")
			_, _ = w.Write(make([]byte, 20<<20))
		}, st: Unknown, causes: []error{ErrTooLarge}},
		{name: "20 MB CRL streamed", handle: func(w http.ResponseWriter, _ *http.Request) {
			chunk := make([]byte, 1<<20)
			for range 20 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}, st: Unknown, causes: []error{ErrTooLarge}},
		{name: "garbage", crl: func(*testing.T, *env, *pki.Cert) []byte { return []byte("\x30\x03garbage") }, st: Unknown, causes: []error{ErrMalformed}},
		{name: "empty", crl: func(*testing.T, *env, *pki.Cert) []byte { return nil }, st: Unknown, causes: []error{ErrMalformed}},
		{name: "PEM of a certificate", crl: func(_ *testing.T, e *env, _ *pki.Cert) []byte { return e.inter.PEM() }, st: Unknown, causes: []error{ErrMalformed}},
		{name: "HTTP 404", handle: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }, st: Unknown, causes: []error{ErrFetch}},
		{name: "unreachable", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.CRLDistributionPoints(closedURL(t)+"/crl"))
		}, st: Unknown, causes: []error{ErrFetch}},
		{name: "no CRL DP", leaf: func(e *env) *pki.Cert { return e.inter.Leaf("client") }, st: Unknown, causes: []error{ErrNoURL}},
		{name: "ldap CRL DP only", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.CRLDistributionPoints("ldap://ldap.example/cn=Test%20Inter?certificateRevocationList"))
		}, st: Unknown, causes: []error{ErrNoURL}},
		{name: "ldap first, http second", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.CRLDistributionPoints("ldap://ldap.example/cn=Test%20Inter", e.crlURL()))
		}, crl: current(true), st: Revoked},
		{name: "second DP answers when the first is down", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.CRLDistributionPoints(closedURL(t)+"/crl", e.crlURL()))
		}, crl: current(true), st: Revoked},
		{name: "delta CRL", crl: current(false, pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: mustMarshal(t, 1)}), st: Unknown, causes: []error{ErrUnsupported}},
		{name: "unknown critical extension", crl: current(false, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}), st: Unknown, causes: []error{ErrUnsupported}},
		{name: "unknown non-critical extension", crl: current(true, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: []byte{5, 0}}), st: Revoked},
		{name: "IDP for this distribution point", crl: func(t *testing.T, e *env, leaf *pki.Cert) []byte {
			return current(true, idpExt([]string{e.crlURL()}, true, false))(t, e, leaf)
		}, st: Revoked},
		{name: "IDP for another distribution point", crl: func(t *testing.T, e *env, leaf *pki.Cert) []byte {
			return current(false, idpExt([]string{e.srv.URL + "/other.crl"}, false, false))(t, e, leaf)
		}, st: Unknown, causes: []error{ErrUnsupported}},
		{name: "IDP onlyContainsCACerts for a leaf", crl: current(false, idpExt(nil, false, true)), st: Unknown, causes: []error{ErrUnsupported}},
		{name: "malformed IDP", crl: current(false, pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: []byte{0x30, 0x03, 0x81, 0x01, 0x07}}), st: Unknown, causes: []error{ErrMalformed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			leaf := e.leaf()
			if tc.leaf != nil {
				leaf = tc.leaf(e)
			}
			switch {
			case tc.handle != nil:
				e.setCRL(tc.handle)
			case tc.crl != nil:
				body := tc.crl(t, e, leaf)
				e.setCRL(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodGet {
						t.Errorf("CRL fetched with %s", r.Method)
					}
					_, _ = w.Write(body)
				})
			}
			r := NewChecker(Options{}).Check(context.Background(), leaf.Cert, e.inter.Cert, ModeCRL, t0)
			t.Logf("%v, Decide(hard) = %v", r.Status, Decide(r, FailHard))
			wantResult(t, r, tc.st, tc.causes...)
			if tc.st != Unknown {
				if r.Source != "crl "+e.crlURL() || !r.NextUpdate.Equal(t0.Add(hour)) {
					t.Errorf("Source, NextUpdate = %q, %v; want %q, %v", r.Source, r.NextUpdate, "crl "+e.crlURL(), t0.Add(hour))
				}
			}
			if tc.st == Revoked && !r.RevokedAt.Equal(t0.Add(-2*hour)) {
				t.Errorf("RevokedAt = %v, want %v", r.RevokedAt, t0.Add(-2*hour))
			}
		})
	}
}

// A CA certificate is checked against its issuer's CRL; an IDP limited to CA certificates
// covers it.
func TestCheckCRLIntermediate(t *testing.T) {
	e := newEnv(t)
	inter := e.root.Intermediate("Inter 2", pki.CRLDistributionPoints(e.crlURL()))
	body := mkCRL(t, e.root, t0.Add(-time.Hour), t0.Add(time.Hour), []*pki.Cert{inter}, idpExt(nil, false, true))
	e.setCRL(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	r := NewChecker(Options{}).Check(context.Background(), inter.Cert, e.root.Cert, ModeCRL, t0)
	wantResult(t, r, Revoked)

	// An IDP limited to end-entity certificates does not.
	e2 := newEnv(t)
	inter2 := e2.root.Intermediate("Inter 2", pki.CRLDistributionPoints(e2.crlURL()))
	body2 := mkCRL(t, e2.root, t0.Add(-time.Hour), t0.Add(time.Hour), nil, idpExt(nil, true, false))
	e2.setCRL(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body2) })
	r = NewChecker(Options{}).Check(context.Background(), inter2.Cert, e2.root.Cert, ModeCRL, t0)
	wantResult(t, r, Unknown, ErrUnsupported)
	if !strings.Contains(r.Err.Error(), "end-entity") {
		t.Errorf("Err = %v, want it to say end-entity", r.Err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseCRLFile: a CRL given as a file (crl_files) goes through the fetched CRL's parser and
// must be a complete CRL: what certbind cannot use as one is refused at load, never applied
// as if it were.
func TestParseCRLFile(t *testing.T) {
	e := newEnv(t)
	leaf := e.leaf()
	other := e.inter.Leaf("other")
	now := time.Now()
	for _, tc := range []struct {
		name string
		crl  []byte
		err  string // "" when it parses
	}{
		{"complete CRL, DER", mkCRL(t, e.inter, now.Add(-time.Hour), now.Add(time.Hour), []*pki.Cert{leaf}), ""},
		{"complete CRL, PEM", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: mkCRL(t, e.inter, now.Add(-time.Hour), now.Add(time.Hour), []*pki.Cert{leaf})}), ""},
		{"delta CRL", mkCRL(t, e.inter, now.Add(-time.Hour), now.Add(time.Hour), nil, pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: mustMarshal(t, 1)}), "delta CRL"},
		{"unknown critical extension", mkCRL(t, e.inter, now.Add(-time.Hour), now.Add(time.Hour), nil, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}), "unknown critical extension"},
		{"PEM of a certificate", e.inter.PEM(), `PEM block is "CERTIFICATE", want X509 CRL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCRL(tc.crl)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.Issues(leaf.Cert, e.inter.Cert) || c.Issues(leaf.Cert, e.root.Cert) {
				t.Error("Issues: the CRL applies to its issuer's certificates only")
			}
			if !c.Revoked(leaf.Cert) || c.Revoked(other.Cert) {
				t.Error("Revoked: the listed serial only")
			}
		})
	}
}
