package revocation

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/certbind/certbind/testenv/pki"
)

// t0 is the clock of every test: certificates, responses and CRLs are placed around it.
var t0 = time.Date(2031, 5, 4, 10, 0, 0, 0, time.UTC)

type ocspFunc func(w http.ResponseWriter, r *http.Request, req *ocsp.Request)
type crlFunc func(w http.ResponseWriter, r *http.Request)

// env is a small PKI (root -> "Test Inter" -> leaf) and one HTTP server acting as OCSP
// responder (/ocsp) and CRL distribution point (/crl, /crl2...), counting hits.
type env struct {
	t           *testing.T
	root, inter *pki.Cert
	srv         *httptest.Server
	ocspHits    atomic.Int64
	crlHits     atomic.Int64

	mu      sync.Mutex
	ocspFn  ocspFunc
	crlFn   crlFunc
	reqSeen *ocsp.Request
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	e.root = pki.NewRoot("Test Root", pki.ValidFor(t0.Add(-24*time.Hour), 30*24*time.Hour))
	e.inter = e.root.Intermediate("Test Inter")
	mux := http.NewServeMux()
	mux.HandleFunc("/ocsp", func(w http.ResponseWriter, r *http.Request) {
		e.ocspHits.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request" {
			t.Errorf("OCSP request: %s %q, want POST application/ocsp-request", r.Method, r.Header.Get("Content-Type"))
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			t.Errorf("OCSP request: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		fn := e.ocspFn
		e.reqSeen = req
		e.mu.Unlock()
		if fn == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		fn(w, r, req)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.crlHits.Add(1)
		e.mu.Lock()
		fn := e.crlFn
		e.mu.Unlock()
		if fn == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		fn(w, r)
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) ocspURL() string { return e.srv.URL + "/ocsp" }
func (e *env) crlURL() string  { return e.srv.URL + "/crl" }

func (e *env) setOCSP(fn ocspFunc) { e.mu.Lock(); e.ocspFn = fn; e.mu.Unlock() }
func (e *env) setCRL(fn crlFunc)   { e.mu.Lock(); e.crlFn = fn; e.mu.Unlock() }

// seen returns the last OCSP request the responder parsed.
func (e *env) seen() *ocsp.Request { e.mu.Lock(); defer e.mu.Unlock(); return e.reqSeen }

// leaf mints a client certificate under inter naming both the OCSP responder and the CRL DP.
func (e *env) leaf(opts ...pki.Option) *pki.Cert {
	base := []pki.Option{pki.OCSPServers(e.ocspURL()), pki.CRLDistributionPoints(e.crlURL())}
	return e.inter.Leaf("client", append(base, opts...)...)
}

// ocspResponse signs an OCSP response about issuer's certificates with signer (issuer when
// nil), embedding signer's certificate when embed is set.
func ocspResponse(t *testing.T, issuer, signer *pki.Cert, embed bool, tmpl ocsp.Response) []byte {
	t.Helper()
	if signer == nil {
		signer = issuer
	}
	if embed {
		tmpl.Certificate = signer.Cert
	}
	der, err := ocsp.CreateResponse(issuer.Cert, signer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatalf("CreateResponse: %v", err)
	}
	return der
}

func status(st int, serial *big.Int, this, next time.Time) ocsp.Response {
	r := ocsp.Response{Status: st, SerialNumber: serial, ThisUpdate: this, NextUpdate: next}
	if st == ocsp.Revoked {
		r.RevokedAt = this.Add(-time.Hour)
		r.RevocationReason = ocsp.KeyCompromise
	}
	return r
}

// respond answers every OCSP request with body.
func respond(body []byte) ocspFunc {
	return func(w http.ResponseWriter, _ *http.Request, _ *ocsp.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(body)
	}
}

// mkCRL issues a CRL by issuer over [this, next] revoking the given certificates.
func mkCRL(t *testing.T, issuer *pki.Cert, this, next time.Time, revoked []*pki.Cert, exts ...pkix.Extension) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, r := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: r.Cert.SerialNumber, RevocationTime: this.Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                this,
		NextUpdate:                next,
		RevokedCertificateEntries: entries,
		ExtraExtensions:           exts,
	}, issuer.Cert, issuer.Key)
	if err != nil {
		t.Fatalf("CreateRevocationList: %v", err)
	}
	return der
}

// idpExt builds a critical issuingDistributionPoint extension.
func idpExt(uris []string, onlyUser, onlyCA bool) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if len(uris) > 0 {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					for _, u := range uris {
						b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
					}
				})
			})
		}
		if onlyUser {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		}
		if onlyCA {
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		}
	})
	return pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: b.BytesOrPanic()}
}

// closedURL returns a URL on 127.0.0.1 where nothing listens any more.
func closedURL(t *testing.T) string {
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}

// wantResult checks a Result's status and causes (none means Err must be nil), and what Decide
// makes of it under both failure policies: Good allows, Revoked denies with ErrRevoked, Unknown
// denies with ErrUnknown (wrapping the causes) under hard and allows under soft.
func wantResult(t *testing.T, r Result, st Status, causes ...error) {
	t.Helper()
	if r.Status != st {
		t.Fatalf("Status = %v, want %v (Source %q, Err %v)", r.Status, st, r.Source, r.Err)
	}
	if len(causes) == 0 && r.Err != nil {
		t.Errorf("Err = %v, want nil", r.Err)
	}
	for _, c := range causes {
		if !errors.Is(r.Err, c) {
			t.Errorf("Err = %v, want errors.Is %v", r.Err, c)
		}
	}
	hard, soft := Decide(r, FailHard), Decide(r, FailSoft)
	switch st {
	case Good:
		if hard != nil || soft != nil {
			t.Errorf("Decide(Good) = %v / %v, want nil / nil", hard, soft)
		}
	case Revoked:
		if !errors.Is(hard, ErrRevoked) || !errors.Is(soft, ErrRevoked) {
			t.Errorf("Decide(Revoked) = %v / %v, want ErrRevoked under both", hard, soft)
		}
	case Unknown:
		if !errors.Is(hard, ErrUnknown) {
			t.Errorf("Decide(Unknown, hard) = %v, want ErrUnknown", hard)
		}
		for _, c := range causes {
			if !errors.Is(hard, c) {
				t.Errorf("Decide(Unknown, hard) = %v, want it to wrap %v", hard, c)
			}
		}
		if soft != nil {
			t.Errorf("Decide(Unknown, soft) = %v, want nil", soft)
		}
	}
}
