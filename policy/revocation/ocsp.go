package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspKey identifies a certificate for the OCSP cache: its issuer's key and its serial.
type ocspKey struct {
	issuerKey [32]byte
	serial    string
}

type ocspEntry struct {
	res     Result
	expires time.Time
}

func (c *Checker) checkOCSP(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) Result {
	urls := usableURLs(cert.OCSPServer)
	if len(urls) == 0 {
		return Result{Source: "ocsp", Err: fmt.Errorf("revocation: ocsp: %w in AIA %q", ErrNoURL, cert.OCSPServer)}
	}
	key := ocspKey{issuerKey: spkiHash(issuer), serial: cert.SerialNumber.String()}
	if r, ok := c.cachedOCSP(key, now); ok {
		return r
	}
	ch := c.group.DoChan("ocsp\x00"+string(key.issuerKey[:])+key.serial, func() (any, error) {
		if r, ok := c.cachedOCSP(key, now); ok { // a flight that just ended filled it
			return r, nil
		}
		r, validUntil := c.queryOCSP(context.WithoutCancel(ctx), cert, issuer, urls, now)
		expires := now.Add(c.opts.NegativeTTL)
		if r.Status != Unknown {
			expires = earliest(now.Add(c.opts.MaxCacheTTL), validUntil)
		}
		c.ocsp.Add(key, ocspEntry{res: r, expires: expires})
		return r, nil
	})
	select {
	case res := <-ch:
		return res.Val.(Result)
	case <-ctx.Done():
		return Result{Source: "ocsp " + urls[0], Err: fmt.Errorf("revocation: ocsp %s: %w: %w", urls[0], ErrFetch, ctx.Err())}
	}
}

func (c *Checker) cachedOCSP(key ocspKey, now time.Time) (Result, bool) {
	e, ok := c.ocsp.Get(key)
	if !ok || !now.Before(e.expires) {
		return Result{}, false
	}
	return e.res, true
}

// queryOCSP asks each responder in turn (RFC 6960 §A.1, POST) until one gives a definite
// answer, and returns it with the time until which it may be used.
func (c *Checker) queryOCSP(ctx context.Context, cert, issuer *x509.Certificate, urls []string, now time.Time) (Result, time.Time) {
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return Result{Source: "ocsp " + urls[0], Err: fmt.Errorf("revocation: ocsp: %w: request: %v", ErrMalformed, err)}, time.Time{}
	}
	var errs []error
	var last Result
	for _, u := range urls {
		body, err := c.fetch(ctx, "ocsp", u, req, "application/ocsp-request", "application/ocsp-response", c.opts.MaxOCSPBytes)
		var r Result
		var validUntil time.Time
		if err != nil {
			r = Result{Source: "ocsp " + u, Err: err}
		} else {
			r, validUntil = c.validateOCSP(body, cert, issuer, u, now)
		}
		c.onFetch("ocsp", u, r.Err)
		if r.Status != Unknown {
			return r, validUntil
		}
		errs = append(errs, r.Err)
		last = r
	}
	last.Err = joinErrs(errs)
	return last, time.Time{}
}

// validateOCSP checks an OCSP response for cert (RFC 6960 §3.2): it is a successful basic
// response; its CertID names cert's serial, issuer name and issuer key; it is signed by the
// issuer or by a responder certificate the issuer issued for id-kp-OCSPSigning, valid at now
// (§4.2.2.2); thisUpdate is not in the future and nextUpdate not past. A response without
// nextUpdate is used until thisUpdate+MaxCacheTTL.
func (c *Checker) validateOCSP(der []byte, cert, issuer *x509.Certificate, url string, now time.Time) (Result, time.Time) {
	src := "ocsp " + url
	fail := func(sentinel error, format string, args ...any) (Result, time.Time) {
		return Result{Source: src, Err: fmt.Errorf("revocation: %s: %w: %s", src, sentinel, fmt.Sprintf(format, args...))}, time.Time{}
	}
	id, err := matchingCertID(der, cert.SerialNumber)
	if err != nil {
		return Result{Source: src, Err: fmt.Errorf("revocation: %s: %w", src, err)}, time.Time{}
	}
	// ocsp picks the same SingleResponse (the first with cert's serial); with a nil issuer it
	// checks the signature only against an embedded certificate, and we authorize that below.
	resp, err := ocsp.ParseResponseForCert(der, cert, nil)
	if err != nil {
		// The one signature check ParseResponseForCert makes with a nil issuer: the embedded
		// responder certificate against the response.
		var pe ocsp.ParseError
		if errors.As(err, &pe) && strings.HasPrefix(string(pe), "bad signature on embedded certificate") {
			return fail(ErrSignature, "%v", err)
		}
		return fail(ErrMalformed, "%v", err)
	}
	if err := matchIssuer(id, resp.IssuerHash, issuer); err != nil {
		return fail(ErrMismatch, "%v", err)
	}
	if err := authorizeSigner(resp, issuer, now); err != nil {
		return fail(ErrSignature, "%v", err)
	}
	if resp.ThisUpdate.After(now.Add(c.opts.ClockSkew)) {
		return fail(ErrStale, "thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	validUntil := resp.NextUpdate
	if validUntil.IsZero() {
		validUntil = resp.ThisUpdate.Add(c.opts.MaxCacheTTL)
	}
	if !now.Before(validUntil) {
		return fail(ErrStale, "valid until %s", validUntil.UTC().Format(time.RFC3339))
	}
	switch resp.Status {
	case ocsp.Good:
		return Result{Status: Good, Source: src, NextUpdate: resp.NextUpdate}, validUntil
	case ocsp.Revoked:
		return Result{Status: Revoked, Source: src, NextUpdate: resp.NextUpdate, RevokedAt: resp.RevokedAt}, validUntil
	}
	return fail(ErrNoStatus, "certStatus unknown")
}

// authorizeSigner checks who signed resp (RFC 6960 §4.2.2.2): the issuer itself, or a
// delegated responder certificate issued directly by the issuer with id-kp-OCSPSigning.
// Responder certificates are not themselves checked for revocation (id-pkix-ocsp-nocheck).
func authorizeSigner(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	rc := resp.Certificate
	if rc == nil {
		return resp.CheckSignatureFrom(issuer)
	}
	// ParseResponseForCert has verified the response with rc.
	if bytes.Equal(rc.Raw, issuer.Raw) {
		return nil
	}
	if err := rc.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("responder certificate %q not issued by the issuer: %v", rc.Subject, err)
	}
	if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return fmt.Errorf("responder certificate %q lacks id-kp-OCSPSigning", rc.Subject)
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return fmt.Errorf("responder certificate %q not valid at %s", rc.Subject, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// The ASN.1 of an OCSP response (RFC 6960 §4.2.1), as far as needed to read the CertIDs, which
// golang.org/x/crypto/ocsp parses but does not expose.
type (
	respCertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}
	respOuter struct {
		Status   asn1.Enumerated
		Response struct {
			ResponseType asn1.ObjectIdentifier
			Response     []byte
		} `asn1:"explicit,tag:0,optional"`
	}
	respBasic struct {
		TBSResponseData struct {
			Raw            asn1.RawContent
			Version        int `asn1:"optional,default:0,explicit,tag:0"`
			RawResponderID asn1.RawValue
			ProducedAt     time.Time `asn1:"generalized"`
			Responses      []respSingle
		}
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	respRevoked struct {
		RevocationTime time.Time       `asn1:"generalized"`
		Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
	}
	respSingle struct {
		CertID     respCertID
		Good       asn1.Flag        `asn1:"tag:0,optional"`
		Revoked    respRevoked      `asn1:"tag:1,optional"`
		Unknown    asn1.Flag        `asn1:"tag:2,optional"`
		ThisUpdate time.Time        `asn1:"generalized"`
		NextUpdate time.Time        `asn1:"generalized,explicit,tag:0,optional"`
		Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
)

var oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// matchingCertID returns the CertID of the first SingleResponse for serial (the one
// ocsp.ParseResponseForCert reads), or why there is none.
func matchingCertID(der []byte, serial *big.Int) (respCertID, error) {
	var outer respOuter
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) > 0 {
		return respCertID{}, fmt.Errorf("%w: not an OCSPResponse", ErrMalformed)
	}
	if st := ocsp.ResponseStatus(outer.Status); st != ocsp.Success {
		return respCertID{}, fmt.Errorf("%w: responseStatus %s", ErrNoStatus, st)
	}
	if !outer.Response.ResponseType.Equal(oidOCSPBasic) {
		return respCertID{}, fmt.Errorf("%w: not a basic OCSP response", ErrMalformed)
	}
	var basic respBasic
	if rest, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil || len(rest) > 0 {
		return respCertID{}, fmt.Errorf("%w: bad BasicOCSPResponse", ErrMalformed)
	}
	for _, s := range basic.TBSResponseData.Responses {
		if s.CertID.SerialNumber != nil && s.CertID.SerialNumber.Cmp(serial) == 0 {
			return s.CertID, nil
		}
	}
	return respCertID{}, fmt.Errorf("%w: no status for serial %s", ErrMismatch, serial)
}

// matchIssuer checks the CertID's issuerNameHash and issuerKeyHash (RFC 6960 §4.1.1).
func matchIssuer(id respCertID, h crypto.Hash, issuer *x509.Certificate) error {
	if !h.Available() {
		return fmt.Errorf("hash %v unavailable", h)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return fmt.Errorf("issuer key: %v", err)
	}
	hh := h.New()
	hh.Write(issuer.RawSubject)
	if !bytes.Equal(hh.Sum(nil), id.NameHash) {
		return errors.New("issuerNameHash is not the issuer's")
	}
	hh.Reset()
	hh.Write(spki.PublicKey.RightAlign())
	if !bytes.Equal(hh.Sum(nil), id.IssuerKeyHash) {
		return errors.New("issuerKeyHash is not the issuer's")
	}
	return nil
}
