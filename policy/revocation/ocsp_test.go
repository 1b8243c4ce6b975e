package revocation

import (
	"context"
	"crypto/x509"
	"math/big"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certbind/certbind/testenv/pki"
)

func TestCheckOCSP(t *testing.T) {
	hour := time.Hour
	type ocspCase struct {
		name   string
		leaf   func(e *env) *pki.Cert // default e.leaf()
		resp   func(t *testing.T, e *env, leaf *pki.Cert) ocspFunc
		opts   Options
		st     Status
		causes []error
	}
	// fixed answers about leaf, signed by signer (nil: the issuer), signer embedded or not.
	answer := func(st int, signer func(e *env) *pki.Cert, embed bool, this, next time.Time) func(*testing.T, *env, *pki.Cert) ocspFunc {
		return func(t *testing.T, e *env, leaf *pki.Cert) ocspFunc {
			var s *pki.Cert
			if signer != nil {
				s = signer(e)
			}
			return respond(ocspResponse(t, e.inter, s, embed, status(st, leaf.Cert.SerialNumber, this, next)))
		}
	}
	raw := func(body []byte) func(*testing.T, *env, *pki.Cert) ocspFunc {
		return func(*testing.T, *env, *pki.Cert) ocspFunc { return respond(body) }
	}
	delegate := func(opts ...pki.Option) func(e *env) *pki.Cert {
		return func(e *env) *pki.Cert { return e.inter.Leaf("OCSP Responder", opts...) }
	}
	ocspSigning := pki.EKU(x509.ExtKeyUsageOCSPSigning)

	tests := []ocspCase{
		{name: "good", resp: answer(ocsp.Good, nil, false, t0.Add(-hour), t0.Add(hour)), st: Good},
		{name: "revoked", resp: answer(ocsp.Revoked, nil, false, t0.Add(-hour), t0.Add(hour)), st: Revoked},
		{name: "unknown certStatus", resp: answer(ocsp.Unknown, nil, false, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrNoStatus}},
		{name: "tryLater", resp: raw(ocsp.TryLaterErrorResponse), st: Unknown, causes: []error{ErrNoStatus}},
		{name: "unauthorized", resp: raw(ocsp.UnauthorizedErrorResponse), st: Unknown, causes: []error{ErrNoStatus}},
		{name: "unreachable", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.OCSPServers(closedURL(t)+"/ocsp"))
		}, st: Unknown, causes: []error{ErrFetch}},
		{name: "HTTP 500", resp: func(*testing.T, *env, *pki.Cert) ocspFunc {
			return func(w http.ResponseWriter, _ *http.Request, _ *ocsp.Request) {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}, st: Unknown, causes: []error{ErrFetch}},
		{name: "slow responder is cut at Timeout", opts: Options{Timeout: 200 * time.Millisecond}, resp: func(*testing.T, *env, *pki.Cert) ocspFunc {
			return func(_ http.ResponseWriter, r *http.Request, _ *ocsp.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
		}, st: Unknown, causes: []error{ErrFetch, context.DeadlineExceeded}},
		{name: "signed by a wrong key", resp: func(t *testing.T, e *env, leaf *pki.Cert) ocspFunc {
			impostor := &pki.Cert{Cert: e.inter.Cert, Key: pki.NewRoot("Other").Key} // names inter, another key
			return respond(ocspResponse(t, e.inter, impostor, false, status(ocsp.Good, leaf.Cert.SerialNumber, t0.Add(-hour), t0.Add(hour))))
		}, st: Unknown, causes: []error{ErrSignature}},
		{name: "signed by a wrong key, issuer embedded", resp: func(t *testing.T, e *env, leaf *pki.Cert) ocspFunc {
			impostor := &pki.Cert{Cert: e.inter.Cert, Key: pki.NewRoot("Other").Key}
			return respond(ocspResponse(t, e.inter, impostor, true, status(ocsp.Good, leaf.Cert.SerialNumber, t0.Add(-hour), t0.Add(hour))))
		}, st: Unknown, causes: []error{ErrSignature}},
		{name: "embedded responder of another CA", resp: answer(ocsp.Good, func(*env) *pki.Cert {
			return pki.NewRoot("Other CA").Leaf("OCSP Responder", ocspSigning)
		}, true, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrSignature}},
		{name: "embedded responder of a CA with the issuer's name", resp: answer(ocsp.Good, func(*env) *pki.Cert {
			return pki.NewRoot("Test Inter").Leaf("OCSP Responder", ocspSigning)
		}, true, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrSignature}},
		{name: "response for another serial", resp: func(t *testing.T, e *env, _ *pki.Cert) ocspFunc {
			return respond(ocspResponse(t, e.inter, nil, false, status(ocsp.Good, big.NewInt(424242), t0.Add(-hour), t0.Add(hour))))
		}, st: Unknown, causes: []error{ErrMismatch}},
		{name: "response for this serial under another issuer", resp: func(t *testing.T, e *env, leaf *pki.Cert) ocspFunc {
			other := pki.NewRoot("Other CA")
			return respond(ocspResponse(t, other, e.inter, false, status(ocsp.Good, leaf.Cert.SerialNumber, t0.Add(-hour), t0.Add(hour))))
		}, st: Unknown, causes: []error{ErrMismatch}},
		{name: "stale nextUpdate", resp: answer(ocsp.Good, nil, false, t0.Add(-2*hour), t0.Add(-time.Minute)), st: Unknown, causes: []error{ErrStale}},
		{name: "stale revoked is still only unknown", resp: answer(ocsp.Revoked, nil, false, t0.Add(-2*hour), t0.Add(-time.Minute)), st: Unknown, causes: []error{ErrStale}},
		{name: "thisUpdate in the future", resp: answer(ocsp.Good, nil, false, t0.Add(hour), t0.Add(2*hour)), st: Unknown, causes: []error{ErrStale}},
		{name: "thisUpdate within clock skew", resp: answer(ocsp.Good, nil, false, t0.Add(time.Minute), t0.Add(2*hour)), st: Good},
		{name: "no nextUpdate, recent", resp: answer(ocsp.Good, nil, false, t0.Add(-10*time.Minute), time.Time{}), st: Good},
		{name: "no nextUpdate, older than MaxCacheTTL", resp: answer(ocsp.Good, nil, false, t0.Add(-2*hour), time.Time{}), st: Unknown, causes: []error{ErrStale}},
		{name: "garbage", resp: raw([]byte("<html>not OCSP</html>")), st: Unknown, causes: []error{ErrMalformed}},
		{name: "empty body", resp: raw(nil), st: Unknown, causes: []error{ErrMalformed}},
		{name: "over MaxOCSPBytes", resp: raw(make([]byte, 65<<10)), st: Unknown, causes: []error{ErrTooLarge}},
		{name: "delegated responder with id-kp-OCSPSigning", resp: answer(ocsp.Good, delegate(ocspSigning), true, t0.Add(-hour), t0.Add(hour)), st: Good},
		{name: "delegated responder says revoked", resp: answer(ocsp.Revoked, delegate(ocspSigning), true, t0.Add(-hour), t0.Add(hour)), st: Revoked},
		{name: "delegated responder with clientAuth only", resp: answer(ocsp.Revoked, delegate(pki.ClientAuth()), true, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrSignature}},
		{name: "delegated responder without EKU", resp: answer(ocsp.Good, delegate(pki.EKU()), true, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrSignature}},
		{name: "delegated responder expired", resp: answer(ocsp.Good, delegate(ocspSigning, pki.ValidFor(t0.Add(-48*hour), hour)), true, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrSignature}},
		{name: "delegated responder not embedded", resp: answer(ocsp.Good, delegate(ocspSigning), false, t0.Add(-hour), t0.Add(hour)), st: Unknown, causes: []error{ErrSignature}},
		{name: "issuer certificate embedded", resp: answer(ocsp.Good, nil, true, t0.Add(-hour), t0.Add(hour)), st: Good},
		{name: "no OCSP URL", leaf: func(e *env) *pki.Cert { return e.inter.Leaf("client") }, st: Unknown, causes: []error{ErrNoURL}},
		{name: "ldap OCSP URL only", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.OCSPServers("ldap://ldap.example/cn=ocsp"))
		}, st: Unknown, causes: []error{ErrNoURL}},
		{name: "second responder answers when the first is down", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.OCSPServers(closedURL(t)+"/ocsp", e.ocspURL()))
		}, resp: answer(ocsp.Good, nil, false, t0.Add(-hour), t0.Add(hour)), st: Good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			leaf := e.leaf()
			if tc.leaf != nil {
				leaf = tc.leaf(e)
			}
			if tc.resp != nil {
				e.setOCSP(tc.resp(t, e, leaf))
			}
			c := NewChecker(tc.opts)
			start := time.Now()
			r := c.Check(context.Background(), leaf.Cert, e.inter.Cert, ModeOCSP, t0)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Check took %v", d)
			}
			t.Logf("%v, Decide(hard) = %v", r.Status, Decide(r, FailHard))
			wantResult(t, r, tc.st, tc.causes...)
			if tc.st != Unknown {
				if r.Source != "ocsp "+e.ocspURL() {
					t.Errorf("Source = %q, want %q", r.Source, "ocsp "+e.ocspURL())
				}
				if !r.NextUpdate.Equal(t0.Add(hour)) && !r.NextUpdate.Equal(t0.Add(2*hour)) && !r.NextUpdate.IsZero() {
					t.Errorf("NextUpdate = %v", r.NextUpdate)
				}
			}
			if tc.st == Revoked && !r.RevokedAt.Equal(t0.Add(-2*hour)) {
				t.Errorf("RevokedAt = %v, want %v", r.RevokedAt, t0.Add(-2*hour))
			}
			if tc.resp != nil {
				if seen := e.seen(); seen == nil || seen.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
					t.Errorf("responder saw request %+v, want serial %v", seen, leaf.Cert.SerialNumber)
				}
			}
		})
	}
}

// An intermediate is checked against the root with the same rules.
func TestCheckOCSPIntermediate(t *testing.T) {
	e := newEnv(t)
	inter := e.root.Intermediate("Inter 2", pki.OCSPServers(e.ocspURL()))
	e.setOCSP(respond(ocspResponse(t, e.root, nil, false, status(ocsp.Revoked, inter.Cert.SerialNumber, t0.Add(-time.Hour), t0.Add(time.Hour)))))
	r := NewChecker(Options{}).Check(context.Background(), inter.Cert, e.root.Cert, ModeOCSP, t0)
	wantResult(t, r, Revoked)
}
