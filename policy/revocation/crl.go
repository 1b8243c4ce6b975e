package revocation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// crlEntry is a fetched CRL (or the failure to fetch one), cached by URL.
type crlEntry struct {
	list        *x509.RevocationList
	revoked     map[string]time.Time // serial (decimal) -> revocation time
	scope       crlScope
	unsupported error // why this CRL cannot be used as a complete CRL, if it cannot
	err         error // fetch or parse failure: list is nil
	expires     time.Time
	verified    sync.Map // sha256 of issuer DER -> error (nil when the signature holds)
}

// crlScope is the CRL's issuingDistributionPoint (RFC 5280 §5.2.5), when present.
type crlScope struct {
	present    bool
	dpURIs     []string // fullName URIs; empty when the CRL names no distribution point
	dpNamed    bool     // a distributionPoint is present
	onlyUser   bool
	onlyCA     bool
	onlyAttr   bool
	someReason bool
	indirect   bool
}

func (c *Checker) checkCRL(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) Result {
	urls := usableURLs(cert.CRLDistributionPoints)
	if len(urls) == 0 {
		return Result{Source: "crl", Err: fmt.Errorf("revocation: crl: %w in CRL distribution points %q", ErrNoURL, cert.CRLDistributionPoints)}
	}
	var errs []error
	var last Result
	for _, u := range urls {
		r := c.loadCRL(ctx, u, issuer, now).evaluate(cert, issuer, u, now, c.opts.ClockSkew)
		if r.Status != Unknown {
			return r
		}
		errs = append(errs, r.Err)
		last = r
	}
	last.Err = joinErrs(errs)
	return last
}

// loadCRL returns the cached CRL of url, or fetches it (one fetch per URL at a time).
func (c *Checker) loadCRL(ctx context.Context, url string, issuer *x509.Certificate, now time.Time) *crlEntry {
	if e, ok := c.cachedCRL(url, now); ok {
		return e
	}
	ch := c.group.DoChan("crl\x00"+url, func() (any, error) {
		if e, ok := c.cachedCRL(url, now); ok {
			return e, nil
		}
		e := c.fetchCRL(context.WithoutCancel(ctx), url, issuer, now)
		c.crls.Add(url, e)
		return e, nil
	})
	select {
	case res := <-ch:
		return res.Val.(*crlEntry)
	case <-ctx.Done():
		return &crlEntry{err: fmt.Errorf("revocation: crl %s: %w: %w", url, ErrFetch, ctx.Err())}
	}
}

func (c *Checker) cachedCRL(url string, now time.Time) (*crlEntry, bool) {
	e, ok := c.crls.Get(url)
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e, true
}

// fetchCRL fetches and parses the CRL at url. A CRL is kept until min(nextUpdate,
// now+MaxCacheTTL); a failure, a CRL already stale, or one that the fetching issuer did not
// sign is kept only NegativeTTL, so that a fixed CRL is picked up soon.
func (c *Checker) fetchCRL(ctx context.Context, url string, issuer *x509.Certificate, now time.Time) *crlEntry {
	negative := now.Add(c.opts.NegativeTTL)
	data, err := c.fetch(ctx, "crl", url, nil, "", "application/pkix-crl", c.opts.MaxCRLBytes)
	if err != nil {
		c.onFetch("crl", url, err)
		return &crlEntry{err: err, expires: negative}
	}
	e, err := parseCRL(data)
	if err != nil {
		err = fmt.Errorf("revocation: crl %s: %w: %v", url, ErrMalformed, err)
		c.onFetch("crl", url, err)
		return &crlEntry{err: err, expires: negative}
	}
	e.expires = negative
	nu := e.list.NextUpdate
	switch sigErr := e.signedBy(issuer); {
	case sigErr != nil:
		err = fmt.Errorf("revocation: crl %s: %w: %v", url, ErrSignature, sigErr)
	case nu.IsZero() || !now.Before(nu):
		err = fmt.Errorf("revocation: crl %s: %w: nextUpdate %s", url, ErrStale, nu.UTC().Format(time.RFC3339))
	default:
		e.expires = earliest(now.Add(c.opts.MaxCacheTTL), nu)
	}
	c.onFetch("crl", url, err)
	return e
}

// parseCRL parses a DER or PEM CRL and indexes its serials. It does not check the signature.
func parseCRL(data []byte) (*crlEntry, error) {
	der := data
	if block, rest := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block is %q, want X509 CRL", block.Type)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, errors.New("data after the CRL")
		}
		der = block.Bytes
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	e := &crlEntry{list: l, revoked: make(map[string]time.Time, len(l.RevokedCertificateEntries))}
	for _, ext := range l.Extensions {
		switch {
		case ext.Id.Equal(oidIssuingDistributionPoint):
			scope, err := parseIDP(ext.Value)
			if err != nil {
				return nil, fmt.Errorf("issuingDistributionPoint: %v", err)
			}
			e.scope = scope
		case ext.Id.Equal(oidDeltaCRLIndicator):
			e.unsupported = errors.New("delta CRL")
		case ext.Critical && !slices.ContainsFunc(knownCRLExtensions, ext.Id.Equal):
			e.unsupported = fmt.Errorf("unknown critical extension %s", ext.Id)
		}
	}
	for i := range l.RevokedCertificateEntries {
		rc := &l.RevokedCertificateEntries[i]
		if rc.SerialNumber == nil {
			return nil, errors.New("entry without serial")
		}
		for _, ext := range rc.Extensions {
			if ext.Id.Equal(oidCertificateIssuer) {
				e.unsupported = errors.New("indirect CRL entry (certificateIssuer)")
			} else if ext.Critical && !slices.ContainsFunc(knownEntryExtensions, ext.Id.Equal) {
				e.unsupported = fmt.Errorf("unknown critical entry extension %s", ext.Id)
			}
		}
		e.revoked[rc.SerialNumber.String()] = rc.RevocationTime
	}
	// The index replaces the parsed entries (two copies of them), which a large CRL would keep.
	l.RevokedCertificateEntries, l.RevokedCertificates = nil, nil
	return e, nil
}

// signedBy checks the CRL's signature with issuer, once per issuer certificate.
func (e *crlEntry) signedBy(issuer *x509.Certificate) error {
	key := sha256.Sum256(issuer.Raw)
	if v, ok := e.verified.Load(key); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := e.list.CheckSignatureFrom(issuer)
	e.verified.Store(key, err) // a nil error is stored as nil: verified
	return err
}

// evaluate answers for cert from this CRL (RFC 5280 §6.3.3): the CRL must be issued under
// cert's issuer name and signed by issuer, be current at now, be a complete CRL whose scope
// covers cert and the distribution point it was fetched from; then cert is Revoked when listed.
func (e *crlEntry) evaluate(cert, issuer *x509.Certificate, url string, now time.Time, skew time.Duration) Result {
	src := "crl " + url
	fail := func(sentinel error, format string, args ...any) Result {
		return Result{Source: src, Err: fmt.Errorf("revocation: %s: %w: %s", src, sentinel, fmt.Sprintf(format, args...))}
	}
	if e.err != nil {
		return Result{Source: src, Err: e.err}
	}
	l := e.list
	if !bytes.Equal(l.RawIssuer, cert.RawIssuer) {
		return fail(ErrMismatch, "CRL issuer is not the certificate's issuer")
	}
	if err := e.signedBy(issuer); err != nil {
		return fail(ErrSignature, "%v", err)
	}
	if e.unsupported != nil {
		return fail(ErrUnsupported, "%v", e.unsupported)
	}
	if err := e.scope.covers(cert, url); err != nil {
		return fail(ErrUnsupported, "%v", err)
	}
	if l.ThisUpdate.After(now.Add(skew)) {
		return fail(ErrStale, "thisUpdate %s is in the future", l.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if l.NextUpdate.IsZero() {
		return fail(ErrStale, "CRL has no nextUpdate")
	}
	if !now.Before(l.NextUpdate) {
		return fail(ErrStale, "nextUpdate %s has passed", l.NextUpdate.UTC().Format(time.RFC3339))
	}
	if at, ok := e.revoked[cert.SerialNumber.String()]; ok {
		return Result{Status: Revoked, Source: src, NextUpdate: l.NextUpdate, RevokedAt: at}
	}
	return Result{Status: Good, Source: src, NextUpdate: l.NextUpdate}
}

// covers reports why a CRL with this scope cannot say that cert, whose distribution point is
// url, is not revoked (RFC 5280 §6.3.3 b.2).
func (s crlScope) covers(cert *x509.Certificate, url string) error {
	if !s.present {
		return nil
	}
	switch {
	case s.indirect:
		return errors.New("indirect CRL")
	case s.someReason:
		return errors.New("CRL covers only some reasons")
	case s.onlyAttr:
		return errors.New("CRL covers only attribute certificates")
	case s.onlyUser && cert.IsCA:
		return errors.New("CRL covers only end-entity certificates")
	case s.onlyCA && !cert.IsCA:
		return errors.New("CRL covers only CA certificates")
	case s.dpNamed && !slices.Contains(s.dpURIs, url):
		return fmt.Errorf("CRL is for distribution point %q", s.dpURIs)
	}
	return nil
}

var (
	oidAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidFreshestCRL              = asn1.ObjectIdentifier{2, 5, 29, 46}
	oidAuthorityInfoAccess      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidReasonCode               = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate           = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidCertificateIssuer        = asn1.ObjectIdentifier{2, 5, 29, 29}

	knownCRLExtensions   = []asn1.ObjectIdentifier{oidAuthorityKeyID, oidCRLNumber, oidIssuingDistributionPoint, oidFreshestCRL, oidAuthorityInfoAccess}
	knownEntryExtensions = []asn1.ObjectIdentifier{oidReasonCode, oidInvalidityDate}
)

// parseIDP parses IssuingDistributionPoint (RFC 5280 §5.2.5; implicit tags):
//
//	SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL,
//	  onlyContainsUserCerts [1] BOOLEAN DEFAULT FALSE, onlyContainsCACerts [2] BOOLEAN DEFAULT FALSE,
//	  onlySomeReasons [3] ReasonFlags OPTIONAL, indirectCRL [4] BOOLEAN DEFAULT FALSE,
//	  onlyContainsAttributeCerts [5] BOOLEAN DEFAULT FALSE }
func parseIDP(der []byte) (crlScope, error) {
	s := crlScope{present: true}
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return s, errors.New("malformed")
	}
	var dp cryptobyte.String
	if !seq.ReadOptionalASN1(&dp, &s.dpNamed, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return s, errors.New("malformed distributionPoint")
	}
	if s.dpNamed {
		// DistributionPointName ::= CHOICE { fullName [0] GeneralNames, nameRelativeToCRLIssuer [1] ... }
		var full cryptobyte.String
		var hasFull bool
		if !dp.ReadOptionalASN1(&full, &hasFull, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return s, errors.New("malformed distributionPoint name")
		}
		for hasFull && !full.Empty() {
			var gn cryptobyte.String
			var tag cbasn1.Tag
			if !full.ReadAnyASN1(&gn, &tag) {
				return s, errors.New("malformed fullName")
			}
			if tag == cbasn1.Tag(6).ContextSpecific() { // uniformResourceIdentifier
				s.dpURIs = append(s.dpURIs, string(gn))
			}
		}
	}
	for _, f := range []struct {
		tag cbasn1.Tag
		out *bool
	}{{1, &s.onlyUser}, {2, &s.onlyCA}} {
		if !readImplicitBool(&seq, f.tag, f.out) {
			return s, errors.New("malformed flag")
		}
	}
	var reasons cryptobyte.String
	if !seq.ReadOptionalASN1(&reasons, &s.someReason, cbasn1.Tag(3).ContextSpecific()) {
		return s, errors.New("malformed onlySomeReasons")
	}
	if !readImplicitBool(&seq, 4, &s.indirect) || !readImplicitBool(&seq, 5, &s.onlyAttr) || !seq.Empty() {
		return s, errors.New("malformed flag")
	}
	return s, nil
}

// readImplicitBool reads an optional [tag] IMPLICIT BOOLEAN DEFAULT FALSE.
func readImplicitBool(s *cryptobyte.String, tag cbasn1.Tag, out *bool) bool {
	var v cryptobyte.String
	var present bool
	if !s.ReadOptionalASN1(&v, &present, tag.ContextSpecific()) {
		return false
	}
	if !present {
		*out = false
		return true
	}
	if len(v) != 1 || (v[0] != 0 && v[0] != 0xff) {
		return false
	}
	*out = v[0] == 0xff
	return true
}

// CRL is a CRL certbind was given as a file (crl_files) rather than fetched: parsed, its
// serials indexed and its signature checks cached by the same code as a fetched one.
type CRL struct{ e *crlEntry }

// ParseCRL parses a DER or PEM CRL file. It must be usable as a complete CRL for its issuer:
// a delta CRL, an indirect CRL or an unknown critical extension is an error, and so is a CRL
// without nextUpdate (certbind could not tell when it goes stale).
func ParseCRL(data []byte) (*CRL, error) {
	e, err := parseCRL(data)
	if err != nil {
		return nil, err
	}
	if e.unsupported != nil {
		return nil, e.unsupported
	}
	if e.list.NextUpdate.IsZero() {
		return nil, errors.New("CRL has no nextUpdate: certbind cannot tell when it goes stale")
	}
	return &CRL{e: e}, nil
}

// List is the parsed CRL (its entries are dropped once indexed).
func (c *CRL) List() *x509.RevocationList { return c.e.list }

// Issues reports whether the CRL speaks for cert, issued by issuer: it is issued under cert's
// issuer name and its signature holds under issuer's key (a CRL of another CA with the same
// name does not).
func (c *CRL) Issues(cert, issuer *x509.Certificate) bool {
	return bytes.Equal(c.e.list.RawIssuer, cert.RawIssuer) && c.e.signedBy(issuer) == nil
}

// Revoked reports whether cert's serial number is listed.
func (c *CRL) Revoked(cert *x509.Certificate) bool {
	_, ok := c.e.revoked[cert.SerialNumber.String()]
	return ok
}
