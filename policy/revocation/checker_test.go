package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certbind/certbind/testenv/pki"
)

func TestDecide(t *testing.T) {
	fetchErr := fmt.Errorf("revocation: ocsp http://x: %w: HTTP 500", ErrFetch)
	tests := []struct {
		name string
		r    Result
		p    FailurePolicy
		want []error // nil: allow
	}{
		{"good, hard", Result{Status: Good}, FailHard, nil},
		{"good, soft", Result{Status: Good}, FailSoft, nil},
		{"revoked, hard", Result{Status: Revoked, Source: "crl http://x"}, FailHard, []error{ErrRevoked}},
		{"revoked, soft", Result{Status: Revoked, Source: "crl http://x", RevokedAt: t0}, FailSoft, []error{ErrRevoked}},
		{"unknown, hard", Result{Err: fetchErr}, FailHard, []error{ErrUnknown, ErrFetch}},
		{"unknown, soft", Result{Err: fetchErr}, FailSoft, nil},
		{"zero Result, hard", Result{}, FailHard, []error{ErrUnknown}},
		{"zero Result, soft", Result{}, FailSoft, nil},
		{"unknown, empty policy is hard", Result{Err: fetchErr}, "", []error{ErrUnknown, ErrFetch}},
		{"unknown, bogus policy is hard", Result{Err: fetchErr}, "Soft", []error{ErrUnknown}},
		{"out-of-range status is unknown", Result{Status: 42}, FailHard, []error{ErrUnknown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Decide(tc.r, tc.p)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decide = %v, want nil", err)
				}
				return
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Decide = %v, want errors.Is %v", err, w)
				}
			}
			if errors.Is(err, ErrRevoked) && errors.Is(err, ErrUnknown) {
				t.Errorf("Decide = %v is both revoked and unknown", err)
			}
		})
	}
}

func TestModesAndPolicies(t *testing.T) {
	for _, m := range []Mode{ModeOff, ModeCRL, ModeOCSP, ModeOCSPThenCRL} {
		if !m.Valid() {
			t.Errorf("%q not Valid", m)
		}
	}
	for _, m := range []Mode{"", "OCSP", "crl_then_ocsp"} {
		if m.Valid() {
			t.Errorf("%q Valid", m)
		}
	}
	if !FailHard.Valid() || !FailSoft.Valid() || FailurePolicy("").Valid() || FailurePolicy("open").Valid() {
		t.Error("FailurePolicy.Valid wrong")
	}
}

func TestCheckInputs(t *testing.T) {
	e := newEnv(t)
	leaf := e.leaf()
	c := NewChecker(Options{})
	ctx := context.Background()
	tests := []struct {
		name         string
		cert, issuer *pki.Cert
		mode         Mode
		st           Status
		causes       []error
	}{
		{"off", leaf, e.inter, ModeOff, Good, nil},
		{"off with nil certificates", nil, nil, ModeOff, Good, nil},
		{"empty mode", leaf, e.inter, "", Unknown, []error{ErrMode}},
		{"bogus mode", leaf, e.inter, "OCSP", Unknown, []error{ErrMode}},
		{"nil issuer", leaf, nil, ModeOCSP, Unknown, []error{ErrMismatch}},
		{"issuer is not the certificate's issuer", leaf, e.root, ModeOCSPThenCRL, Unknown, []error{ErrMismatch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cert, issuer = certOf(tc.cert), certOf(tc.issuer)
			r := c.Check(ctx, cert, issuer, tc.mode, t0)
			wantResult(t, r, tc.st, tc.causes...)
		})
	}
	t.Run("certificate without serial", func(t *testing.T) {
		bare := &x509.Certificate{RawIssuer: e.inter.Cert.RawSubject, OCSPServer: []string{e.ocspURL()}}
		wantResult(t, c.Check(ctx, bare, e.inter.Cert, ModeOCSP, t0), Unknown, ErrMismatch)
	})
	if n := e.ocspHits.Load() + e.crlHits.Load(); n != 0 {
		t.Errorf("%d fetches, want none", n)
	}
}

func TestOCSPThenCRL(t *testing.T) {
	hour := time.Hour
	type side func(t *testing.T, e *env, leaf *pki.Cert)
	ocspSays := func(st int) side {
		return func(t *testing.T, e *env, leaf *pki.Cert) {
			e.setOCSP(respond(ocspResponse(t, e.inter, nil, false, status(st, leaf.Cert.SerialNumber, t0.Add(-hour), t0.Add(hour)))))
		}
	}
	ocspDown := func(t *testing.T, e *env, _ *pki.Cert) {
		e.setOCSP(func(w http.ResponseWriter, _ *http.Request, _ *ocsp.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})
	}
	crlSays := func(revoked bool) side {
		return func(t *testing.T, e *env, leaf *pki.Cert) {
			var rev []*pki.Cert
			if revoked {
				rev = []*pki.Cert{leaf}
			}
			body := mkCRL(t, e.inter, t0.Add(-hour), t0.Add(hour), rev)
			e.setCRL(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
		}
	}
	crlGarbage := func(t *testing.T, e *env, _ *pki.Cert) {
		e.setCRL(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("garbage")) })
	}
	tests := []struct {
		name       string
		leaf       func(e *env) *pki.Cert
		ocsp, crl  side
		st         Status
		causes     []error
		source     string // "ocsp" or "crl"
		crlFetched bool
	}{
		{name: "OCSP good, CRL not fetched", ocsp: ocspSays(ocsp.Good), crl: crlSays(true), st: Good, source: "ocsp"},
		{name: "OCSP revoked, CRL not fetched", ocsp: ocspSays(ocsp.Revoked), crl: crlSays(false), st: Revoked, source: "ocsp"},
		{name: "OCSP down, CRL revoked", ocsp: ocspDown, crl: crlSays(true), st: Revoked, source: "crl", crlFetched: true},
		{name: "OCSP down, CRL good", ocsp: ocspDown, crl: crlSays(false), st: Good, source: "crl", crlFetched: true},
		{name: "OCSP unknown certStatus, CRL good", ocsp: ocspSays(ocsp.Unknown), crl: crlSays(false), st: Good, source: "crl", crlFetched: true},
		{name: "no OCSP URL, CRL revoked", leaf: func(e *env) *pki.Cert {
			return e.inter.Leaf("client", pki.CRLDistributionPoints(e.crlURL()))
		}, crl: crlSays(true), st: Revoked, source: "crl", crlFetched: true},
		{name: "both fail", ocsp: ocspDown, crl: crlGarbage, st: Unknown, causes: []error{ErrFetch, ErrMalformed}, source: "crl", crlFetched: true},
		{name: "neither URL", leaf: func(e *env) *pki.Cert { return e.inter.Leaf("client") }, st: Unknown, causes: []error{ErrNoURL}, source: "crl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			leaf := e.leaf()
			if tc.leaf != nil {
				leaf = tc.leaf(e)
			}
			if tc.ocsp != nil {
				tc.ocsp(t, e, leaf)
			}
			if tc.crl != nil {
				tc.crl(t, e, leaf)
			}
			r := NewChecker(Options{}).Check(context.Background(), leaf.Cert, e.inter.Cert, ModeOCSPThenCRL, t0)
			wantResult(t, r, tc.st, tc.causes...)
			if !strings.HasPrefix(r.Source, tc.source) {
				t.Errorf("Source = %q, want %s...", r.Source, tc.source)
			}
			if got := e.crlHits.Load() > 0; got != tc.crlFetched {
				t.Errorf("CRL fetched = %v, want %v", got, tc.crlFetched)
			}
		})
	}
}

// switchable serves an OCSP answer about leaf that the test can change, counting fetches.
func switchableOCSP(t *testing.T, e *env, leaf *pki.Cert, st *atomic.Int64, this, next *atomic.Pointer[time.Time]) {
	e.setOCSP(func(w http.ResponseWriter, r *http.Request, req *ocsp.Request) {
		respond(ocspResponse(t, e.inter, nil, false, status(int(st.Load()), leaf.Cert.SerialNumber, *this.Load(), *next.Load())))(w, r, req)
	})
}

func TestOCSPCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	leaf := e.leaf()
	var st atomic.Int64
	var this, next atomic.Pointer[time.Time]
	set := func(s int, th, nx time.Time) { st.Store(int64(s)); this.Store(&th); next.Store(&nx) }
	switchableOCSP(t, e, leaf, &st, &this, &next)
	c := NewChecker(Options{})

	set(ocsp.Good, t0.Add(-time.Minute), t0.Add(10*time.Minute))
	steps := []struct {
		at    time.Duration
		then  func()
		st    Status
		hits  int64
		cause error
	}{
		{at: 0, st: Good, hits: 1},
		{at: 5 * time.Minute, st: Good, hits: 1}, // cached
		{at: 5 * time.Minute, then: func() { set(ocsp.Revoked, t0.Add(9*time.Minute), t0.Add(24*time.Hour)) }, st: Good, hits: 1},
		{at: 10 * time.Minute, st: Revoked, hits: 2}, // nextUpdate reached: not used, refetched
		{at: 69 * time.Minute, st: Revoked, hits: 2}, // cached (MaxCacheTTL 1h from 10m)
		{at: 70 * time.Minute, st: Revoked, hits: 3}, // MaxCacheTTL reached although nextUpdate is later
	}
	for i, s := range steps {
		if s.then != nil {
			s.then()
		}
		r := c.Check(ctx, leaf.Cert, e.inter.Cert, ModeOCSP, t0.Add(s.at))
		if r.Status != s.st || e.ocspHits.Load() != s.hits {
			t.Fatalf("step %d (t0+%v): Status %v, hits %d; want %v, %d (Err %v)", i, s.at, r.Status, e.ocspHits.Load(), s.st, s.hits, r.Err)
		}
	}

	// Another serial of the same issuer is another cache entry.
	other := e.leaf()
	switchableOCSP(t, e, other, &st, &this, &next)
	if r := c.Check(ctx, other.Cert, e.inter.Cert, ModeOCSP, t0.Add(70*time.Minute)); r.Status != Revoked || e.ocspHits.Load() != 4 {
		t.Fatalf("other serial: Status %v, hits %d; want revoked, 4", r.Status, e.ocspHits.Load())
	}
}

func TestOCSPNegativeCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	leaf := e.leaf()
	var down atomic.Bool
	down.Store(true)
	good := ocspResponse(t, e.inter, nil, false, status(ocsp.Good, leaf.Cert.SerialNumber, t0, t0.Add(time.Hour)))
	e.setOCSP(func(w http.ResponseWriter, r *http.Request, req *ocsp.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		respond(good)(w, r, req)
	})
	var fetches []string
	var mu sync.Mutex
	c := NewChecker(Options{NegativeTTL: 30 * time.Second, OnFetch: func(kind, url string, err error) {
		mu.Lock()
		defer mu.Unlock()
		fetches = append(fetches, fmt.Sprintf("%s %v", kind, errors.Is(err, ErrFetch)))
	}})
	steps := []struct {
		at   time.Duration
		up   bool
		st   Status
		hits int64
	}{
		{at: 0, st: Unknown, hits: 1},
		{at: 10 * time.Second, up: true, st: Unknown, hits: 1}, // remembered: the responder is spared
		{at: 30 * time.Second, up: true, st: Good, hits: 2},
		{at: 31 * time.Second, st: Good, hits: 2},
	}
	for i, s := range steps {
		down.Store(!s.up)
		r := c.Check(ctx, leaf.Cert, e.inter.Cert, ModeOCSP, t0.Add(s.at))
		if r.Status != s.st || e.ocspHits.Load() != s.hits {
			t.Fatalf("step %d: Status %v, hits %d; want %v, %d (Err %v)", i, r.Status, e.ocspHits.Load(), s.st, s.hits, r.Err)
		}
		if s.st == Unknown && !errors.Is(r.Err, ErrFetch) {
			t.Fatalf("step %d: Err %v, want ErrFetch", i, r.Err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"ocsp true", "ocsp false"}; fmt.Sprint(fetches) != fmt.Sprint(want) {
		t.Errorf("OnFetch calls = %q, want %q", fetches, want)
	}
}

func TestCRLCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.leaf(), e.leaf()
	var body atomic.Pointer[[]byte]
	set := func(d []byte) { body.Store(&d) }
	e.setCRL(func(w http.ResponseWriter, _ *http.Request) {
		if d := *body.Load(); d != nil {
			_, _ = w.Write(d)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	c := NewChecker(Options{})
	set(mkCRL(t, e.inter, t0.Add(-time.Minute), t0.Add(10*time.Minute), nil))
	steps := []struct {
		at    time.Duration
		then  func()
		cert  *pki.Cert
		st    Status
		hits  int64
		cause error
	}{
		{at: 0, cert: a, st: Good, hits: 1},
		{at: 0, cert: b, st: Good, hits: 1}, // same distribution point, same CRL
		{at: 5 * time.Minute, then: func() {
			set(mkCRL(t, e.inter, t0.Add(9*time.Minute), t0.Add(20*time.Minute), []*pki.Cert{a}))
		}, cert: a, st: Good, hits: 1},
		{at: 10 * time.Minute, cert: a, st: Revoked, hits: 2}, // nextUpdate reached: refetched
		{at: 11 * time.Minute, cert: b, st: Good, hits: 2},
		// A stale CRL is kept only NegativeTTL.
		{at: 20 * time.Minute, then: func() { set(mkCRL(t, e.inter, t0, t0.Add(15*time.Minute), nil)) }, cert: a, st: Unknown, hits: 3, cause: ErrStale},
		{at: 20*time.Minute + 29*time.Second, cert: b, st: Unknown, hits: 3, cause: ErrStale},
		// So is a CRL the issuer did not sign, and a failed fetch.
		{at: 21 * time.Minute, then: func() {
			set(mkCRL(t, pki.NewRoot("Test Inter"), t0.Add(20*time.Minute), t0.Add(2*time.Hour), nil))
		}, cert: a, st: Unknown, hits: 4, cause: ErrSignature},
		{at: 21*time.Minute + 29*time.Second, cert: a, st: Unknown, hits: 4, cause: ErrSignature},
		{at: 22 * time.Minute, then: func() { set(nil) }, cert: a, st: Unknown, hits: 5, cause: ErrFetch},
		{at: 22*time.Minute + 29*time.Second, then: func() {
			set(mkCRL(t, e.inter, t0.Add(20*time.Minute), t0.Add(2*time.Hour), []*pki.Cert{b}))
		}, cert: b, st: Unknown, hits: 5, cause: ErrFetch},
		{at: 23 * time.Minute, cert: b, st: Revoked, hits: 6},
		{at: 82 * time.Minute, cert: a, st: Good, hits: 6},
		{at: 83 * time.Minute, cert: a, st: Good, hits: 7}, // MaxCacheTTL (1h) reached before nextUpdate
	}
	for i, s := range steps {
		if s.then != nil {
			s.then()
		}
		r := c.Check(ctx, s.cert.Cert, e.inter.Cert, ModeCRL, t0.Add(s.at))
		if r.Status != s.st || e.crlHits.Load() != s.hits {
			t.Fatalf("step %d (t0+%v): Status %v, hits %d; want %v, %d (Err %v)", i, s.at, r.Status, e.crlHits.Load(), s.st, s.hits, r.Err)
		}
		if s.cause != nil && !errors.Is(r.Err, s.cause) {
			t.Fatalf("step %d: Err %v, want %v", i, r.Err, s.cause)
		}
	}
}

// Concurrent checks needing the same answer share one fetch.
func TestConcurrentChecksShareOneFetch(t *testing.T) {
	for _, mode := range []Mode{ModeOCSP, ModeCRL} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			leaf := e.leaf()
			release := make(chan struct{})
			good := ocspResponse(t, e.inter, nil, false, status(ocsp.Good, leaf.Cert.SerialNumber, t0, t0.Add(time.Hour)))
			e.setOCSP(func(w http.ResponseWriter, r *http.Request, req *ocsp.Request) {
				<-release
				respond(good)(w, r, req)
			})
			crl := mkCRL(t, e.inter, t0, t0.Add(time.Hour), nil)
			e.setCRL(func(w http.ResponseWriter, _ *http.Request) {
				<-release
				_, _ = w.Write(crl)
			})
			c := NewChecker(Options{})
			const n = 32
			results := make([]Result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { results[i] = c.Check(context.Background(), leaf.Cert, e.inter.Cert, mode, t0) })
			}
			time.Sleep(100 * time.Millisecond)
			close(release)
			wg.Wait()
			for i, r := range results {
				if r.Status != Good {
					t.Fatalf("result %d: %v (%v)", i, r.Status, r.Err)
				}
			}
			if hits := e.ocspHits.Load() + e.crlHits.Load(); hits != 1 {
				t.Errorf("%d fetches, want 1", hits)
			}
		})
	}
}

// When the caller gives up, Check returns Unknown at once; the shared fetch goes on within
// Timeout and fills the cache.
func TestCallerContextEndsFirst(t *testing.T) {
	e := newEnv(t)
	leaf := e.leaf()
	release := make(chan struct{})
	good := ocspResponse(t, e.inter, nil, false, status(ocsp.Good, leaf.Cert.SerialNumber, t0, t0.Add(time.Hour)))
	e.setOCSP(func(w http.ResponseWriter, r *http.Request, req *ocsp.Request) {
		<-release
		respond(good)(w, r, req)
	})
	c := NewChecker(Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := c.Check(ctx, leaf.Cert, e.inter.Cert, ModeOCSP, t0)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Check took %v after its context ended", d)
	}
	wantResult(t, r, Unknown, ErrFetch, context.DeadlineExceeded)
	close(release)
	r = c.Check(context.Background(), leaf.Cert, e.inter.Cert, ModeOCSP, t0)
	wantResult(t, r, Good)
	if hits := e.ocspHits.Load(); hits != 1 {
		t.Errorf("%d fetches, want 1", hits)
	}
}

func certOf(c *pki.Cert) *x509.Certificate {
	if c == nil {
		return nil
	}
	return c.Cert
}
