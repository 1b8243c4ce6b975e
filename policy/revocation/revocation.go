package revocation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Mode says which sources Check consults.
type Mode string

const (
	ModeOff         Mode = "off"           // no check: every certificate is Good
	ModeCRL         Mode = "crl"           // CRL distribution points only
	ModeOCSP        Mode = "ocsp"          // OCSP responders (AIA) only
	ModeOCSPThenCRL Mode = "ocsp_then_crl" // OCSP first; CRL distribution points when OCSP has no answer
)

// Valid reports whether m is one of the modes above.
func (m Mode) Valid() bool {
	switch m {
	case ModeOff, ModeCRL, ModeOCSP, ModeOCSPThenCRL:
		return true
	}
	return false
}

// FailurePolicy says what Decide does with an Unknown status.
type FailurePolicy string

const (
	// FailHard denies when the status is unknown (responder down, stale CRL, no URL, bad
	// response): an attacker who can block the responder cannot use a revoked certificate.
	FailHard FailurePolicy = "hard"
	// FailSoft allows when the status is unknown; the caller logs Result.Err. Only a definite
	// Revoked denies.
	FailSoft FailurePolicy = "soft"
)

// Valid reports whether p is one of the policies above.
func (p FailurePolicy) Valid() bool { return p == FailHard || p == FailSoft }

// Status is the revocation status of one certificate.
type Status int

const (
	// Unknown is the zero value: no usable answer (no URL, unreachable, timeout, bad or stale
	// response, OCSP "unknown"). Result.Err says why.
	Unknown Status = iota
	// Good: a current, correctly signed answer says the certificate is not revoked.
	Good
	// Revoked: a current, correctly signed answer says the certificate is revoked (or on hold).
	Revoked
)

func (s Status) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	}
	return "unknown"
}

// Result is the answer for one certificate.
type Result struct {
	Status Status
	// Source names where the answer came from: "ocsp <url>", "crl <url>", or "off".
	Source string
	// Err says why Status is Unknown (nil otherwise); it matches the sentinels below with errors.Is.
	Err error
	// NextUpdate is the answer's nextUpdate (zero when the OCSP response has none).
	NextUpdate time.Time
	// RevokedAt is the revocation time when Status is Revoked.
	RevokedAt time.Time
}

// Decision errors: Decide returns one of these, wrapped.
var (
	ErrRevoked = errors.New("certificate revoked")
	ErrUnknown = errors.New("revocation status unknown")
)

// Causes of an Unknown status, found in Result.Err with errors.Is.
var (
	ErrNoURL       = errors.New("no usable http URL")                   // no AIA OCSP / CRL DP http(s) URL
	ErrFetch       = errors.New("fetch failed")                         // network error, timeout, HTTP status
	ErrTooLarge    = errors.New("response too large")                   // over MaxCRLBytes / MaxOCSPBytes
	ErrMalformed   = errors.New("malformed response")                   // not a CRL / OCSP response
	ErrSignature   = errors.New("bad or unauthorized signature")        // wrong key, unauthorized delegate
	ErrMismatch    = errors.New("answer is for another certificate")    // other serial or issuer
	ErrStale       = errors.New("answer not current")                   // nextUpdate past or absent, thisUpdate in the future
	ErrNoStatus    = errors.New("responder gave no status")             // OCSP certStatus unknown, tryLater, unauthorized...
	ErrUnsupported = errors.New("CRL scope or extension not supported") // delta, partitioned, indirect, unknown critical extension
	ErrMode        = errors.New("unknown revocation mode")              // Mode not Valid
)

// Decide applies a failure policy to r: nil means allow. Revoked always denies (ErrRevoked);
// Unknown denies with ErrUnknown (wrapping r.Err) unless p is FailSoft. Any policy other than
// FailSoft, including "", is treated as FailHard.
func Decide(r Result, p FailurePolicy) error {
	switch r.Status {
	case Good:
		return nil
	case Revoked:
		if r.RevokedAt.IsZero() {
			return fmt.Errorf("%w (%s)", ErrRevoked, r.Source)
		}
		return fmt.Errorf("%w at %s (%s)", ErrRevoked, r.RevokedAt.UTC().Format(time.RFC3339), r.Source)
	}
	if p == FailSoft {
		return nil
	}
	if r.Err == nil {
		return fmt.Errorf("%w (%s)", ErrUnknown, r.Source)
	}
	return fmt.Errorf("%w: %w", ErrUnknown, r.Err)
}

// Options tunes a Checker. Zero values take the defaults named on each field.
type Options struct {
	Client       *http.Client  // default: a client with Timeout
	Timeout      time.Duration // per fetch, including reading the body; default 3s
	MaxCRLBytes  int64         // largest accepted CRL; default 10 MiB
	MaxOCSPBytes int64         // largest accepted OCSP response; default 64 KiB
	CacheSize    int           // OCSP answers kept (LRU); default 10000
	CRLCacheSize int           // parsed CRLs kept (LRU), each up to MaxCRLBytes; default 64
	MaxCacheTTL  time.Duration // longest an answer is reused, never beyond its nextUpdate; default 1h
	NegativeTTL  time.Duration // how long "no answer" is remembered, to spare a dead responder; default 30s
	ClockSkew    time.Duration // tolerated thisUpdate in the future; default 5m
	// OnFetch, if set, is called after every network attempt with kind "ocsp" or "crl", the URL
	// and the error (nil when the answer was usable). Cache hits do not call it.
	OnFetch func(kind, url string, err error)
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.MaxCRLBytes <= 0 {
		o.MaxCRLBytes = 10 << 20
	}
	if o.MaxOCSPBytes <= 0 {
		o.MaxOCSPBytes = 64 << 10
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.CRLCacheSize <= 0 {
		o.CRLCacheSize = 64
	}
	if o.MaxCacheTTL <= 0 {
		o.MaxCacheTTL = time.Hour
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 30 * time.Second
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = 5 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	return o
}

// maxURLs bounds how many URLs of one kind a certificate makes us try.
const maxURLs = 3

// Checker checks revocation by OCSP and CRL and caches the answers. It is safe for concurrent
// use; concurrent checks needing the same fetch share it.
type Checker struct {
	opts  Options
	ocsp  *lru.Cache[ocspKey, ocspEntry]
	crls  *lru.Cache[string, *crlEntry]
	group singleflight.Group
}

// NewChecker makes a Checker. It fetches nothing until used.
func NewChecker(o Options) *Checker {
	o = o.withDefaults()
	ocspCache, err := lru.New[ocspKey, ocspEntry](o.CacheSize)
	if err != nil {
		panic("revocation: " + err.Error()) // unreachable: sizes are positive after defaults
	}
	crlCache, err := lru.New[string, *crlEntry](o.CRLCacheSize)
	if err != nil {
		panic("revocation: " + err.Error()) // unreachable
	}
	return &Checker{opts: o, ocsp: ocspCache, crls: crlCache}
}

// Check returns the revocation status of cert, issued by issuer (both from a chain already
// verified), at now. Call it for each (chain[i], chain[i+1]) of a verified chain; the trust
// anchor itself is not checked. Fetches are bounded by Options.Timeout and by ctx: when ctx
// ends first, Check returns Unknown while a shared fetch completes in the background and fills
// the cache. Check never returns Good without a current answer signed for the issuer.
func (c *Checker) Check(ctx context.Context, cert, issuer *x509.Certificate, mode Mode, now time.Time) Result {
	if mode == ModeOff {
		return Result{Status: Good, Source: "off"}
	}
	if !mode.Valid() {
		return Result{Err: fmt.Errorf("revocation: %w %q", ErrMode, mode)}
	}
	if cert == nil || issuer == nil || cert.SerialNumber == nil {
		return Result{Err: fmt.Errorf("revocation: %w: nil certificate", ErrMismatch)}
	}
	if string(cert.RawIssuer) != string(issuer.RawSubject) {
		return Result{Err: fmt.Errorf("revocation: %w: issuer's subject is not the certificate's issuer", ErrMismatch)}
	}
	switch mode {
	case ModeCRL:
		return c.checkCRL(ctx, cert, issuer, now)
	case ModeOCSP:
		return c.checkOCSP(ctx, cert, issuer, now)
	}
	r := c.checkOCSP(ctx, cert, issuer, now)
	if r.Status != Unknown {
		return r
	}
	r2 := c.checkCRL(ctx, cert, issuer, now)
	if r2.Status != Unknown {
		return r2
	}
	r2.Err = errors.Join(r.Err, r2.Err)
	return r2
}

// usableURLs keeps the http and https URLs (RFC 5280 §4.2.1.13 and RFC 6960 allow ldap and
// others; those are no answer here), at most maxURLs of them.
func usableURLs(raw []string) []string {
	var out []string
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		out = append(out, s)
		if len(out) == maxURLs {
			break
		}
	}
	return out
}

// joinErrs returns the only error, or all of them joined.
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// spkiHash identifies an issuer's key.
func spkiHash(issuer *x509.Certificate) [32]byte {
	return sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
}

// earliest returns the earlier of a and b, ignoring a zero b.
func earliest(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}
