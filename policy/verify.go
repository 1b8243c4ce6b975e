package policy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/certbind/certbind/policy/dn"
	"github.com/certbind/certbind/policy/revocation"
)

// Presented is the client certificate of one request, parsed: the leaf and the intermediates the
// client sent (never trusted by themselves: they only help build a path to a trust anchor).
type Presented struct {
	Leaf          *x509.Certificate
	Intermediates []*x509.Certificate
	Thumbprint    Thumbprint
	// Subject is the leaf's subject parsed from its DER; when it cannot be parsed (a NUL, an
	// empty RDN) SubjectErr says why and no subject DN registration can match.
	Subject    dn.Name
	SubjectErr error
	// X5tS256 is Thumbprint.String(), and ClientCert the leaf as RFC 9440's Client-Cert header
	// value (its DER in standard base64 between colons: a Structured Field Byte Sequence), each
	// computed once per certificate.
	X5tS256, ClientCert string
	// key is the SHA-256 of the leaf and intermediates DER: the chain cache's key.
	key [32]byte
	// intermediateSums[i] is the SHA-256 of Intermediates[i]'s DER: the anchored path cache's
	// key (anchoredpath.go).
	intermediateSums [][32]byte
	// keysOnce makes the match keys of the leaf's subject and URI SANs (index.go) once: a
	// Presented is cached and decided on again and again.
	keysOnce        sync.Once
	subjectKeyValue string
	uriKeyValues    []string
}

func (p *Presented) matchKeys() {
	p.keysOnce.Do(func() {
		p.subjectKeyValue = p.Subject.Key()
		for _, u := range p.Leaf.URIs {
			p.uriKeyValues = append(p.uriKeyValues, uriKeyOf(u))
		}
	})
}

// subjectKey is Subject.Key(), computed on first use.
func (p *Presented) subjectKey() string {
	p.matchKeys()
	return p.subjectKeyValue
}

// uriKeys are the uriKeyOf of the leaf's URI SANs, in order, computed on first use.
func (p *Presented) uriKeys() []string {
	p.matchKeys()
	return p.uriKeyValues
}

// ErrMalformedCertificate marks certificate bytes that do not parse.
var ErrMalformedCertificate = errors.New("malformed certificate")

// ParsePresented parses a leaf DER and the DER of the intermediates sent with it.
func ParsePresented(leafDER []byte, intermediatesDER [][]byte) (*Presented, error) {
	return parsePresented(leafDER, intermediatesDER, nil)
}

// ParsePresented is the package function with the configuration's intermediate certificates
// interned: the few intermediates every client sends are parsed, and held in memory, once.
func (c *Config) ParsePresented(leafDER []byte, intermediatesDER [][]byte) (*Presented, error) {
	return parsePresented(leafDER, intermediatesDER, c.rt.interned)
}

func parsePresented(leafDER []byte, intermediatesDER [][]byte, interned *lru.Cache[[32]byte, *x509.Certificate]) (*Presented, error) {
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, fmt.Errorf("%w: leaf: %v", ErrMalformedCertificate, err)
	}
	subject, subjErr := dn.FromDER(leaf.RawSubject)
	p := &Presented{Leaf: leaf, Thumbprint: ThumbprintOf(leafDER), Subject: subject, SubjectErr: subjErr}
	p.X5tS256 = p.Thumbprint.String()
	p.ClientCert = clientCertValue(leafDER)
	h := sha256.New()
	h.Write(p.Thumbprint[:])
	for i, der := range intermediatesDER {
		sum := sha256.Sum256(der)
		h.Write(sum[:])
		p.intermediateSums = append(p.intermediateSums, sum)
		if interned != nil {
			if c, ok := interned.Get(sum); ok {
				p.Intermediates = append(p.Intermediates, c)
				continue
			}
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: chain[%d]: %v", ErrMalformedCertificate, i+1, err)
		}
		acceptNameConstraints(c) // before the certificate is interned and shared
		if interned != nil {
			interned.Add(sum, c)
		}
		p.Intermediates = append(p.Intermediates, c)
	}
	copy(p.key[:], h.Sum(nil))
	return p, nil
}

// clientCertValue is der as an RFC 9440 Client-Cert value, built in one allocation.
func clientCertValue(der []byte) string {
	var s strings.Builder
	s.Grow(base64.StdEncoding.EncodedLen(len(der)) + 2)
	s.WriteByte(':')
	var buf [256]byte // the encoding of 192 bytes: whole groups, so no padding before the end
	for len(der) > 0 {
		n := min(len(der), 192)
		base64.StdEncoding.Encode(buf[:], der[:n])
		s.Write(buf[:base64.StdEncoding.EncodedLen(n)])
		der = der[n:]
	}
	s.WriteByte(':')
	return s.String()
}

// chainKey names one verification: a presented chain against one set of trust anchors (the
// global ones, or a client's own).
type chainKey struct {
	chain [32]byte
	roots string // "" for the global anchors, else the client_id whose anchors were used
	fail  revocation.FailurePolicy
}

// cachedChain verifies p against roots, reusing an earlier success. A success is kept until
// the earliest notAfter in the verified chain, the earliest CRL nextUpdate, and the cache TTL;
// failures are not kept.
func (c *Config) cachedChain(ctx context.Context, p *Presented, roots *x509.CertPool, k chainKey, now time.Time) chainResult {
	if c.rt.chainCache == nil || p.key == ([32]byte{}) {
		// (A Presented not made by ParsePresented has no key: it is verified every time.)
		return c.chain(ctx, p, roots, k, now)
	}
	k.chain = p.key
	if until, ok := c.rt.chainCache.Get(k); ok && now.Before(until) && !now.Before(p.Leaf.NotBefore) {
		c.cacheEvent(ctx, "chains", true)
		return chainResult{}
	}
	c.cacheEvent(ctx, "chains", false)
	res := c.chain(ctx, p, roots, k, now)
	if res.err == nil && len(res.chains) > 0 && !res.softFail {
		until := now.Add(c.Cache.TTL)
		if !res.revokedCheckedUntil.IsZero() && res.revokedCheckedUntil.Before(until) {
			until = res.revokedCheckedUntil
		}
		for _, cert := range res.chains[0] {
			if cert.NotAfter.Before(until) {
				until = cert.NotAfter
			}
		}
		for _, l := range c.crls {
			// A CRL already past nextUpdate was ignored (crl_expired: ignore) or would have
			// denied: it does not bound the entry, or every lookup would miss.
			if n := l.List().NextUpdate; n.After(now) && n.Before(until) {
				until = n
			}
		}
		if now.Before(until) && c.rt.chainDoor.Admit(k.chain) {
			c.rt.chainCache.Add(k, until)
		}
	}
	return res
}

// verifyChain validates the presented chain to roots at now for client authentication and
// returns the verified chains, or a deny saying why it fails.
func (c *Config) verifyChain(p *Presented, roots *x509.CertPool, now time.Time) ([][]*x509.Certificate, error) {
	// (Online revocation, when configured, runs in chain after this.)
	leaf := p.Leaf
	// Name the leaf's own problems precisely before path building lumps them together.
	if err := leafValid(p, now); err != nil {
		return nil, err
	}
	if leaf.IsCA {
		return nil, Deny(ReasonCertificateIsCA, errors.New("leaf has basicConstraints cA=true"))
	}
	inter := c.intermediates
	if len(p.Intermediates) > 0 {
		inter = c.intermediates.Clone()
		for _, ic := range p.Intermediates {
			inter.AddCert(ic)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err == nil {
		// crypto/x509 does not check directoryName constraints: keep the chains that hold them.
		if chains, err = directoryNameChains(chains); err != nil {
			return nil, Deny(ReasonCertificateInvalid, err)
		}
		if err := c.checkRevocation(chains, now); err != nil {
			return nil, err
		}
		return chains, nil
	}
	// Anything else, an issuer out of its validity window included (the leaf's was checked
	// above), is certificate_invalid.
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return nil, Deny(ReasonCertificateUntrusted, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return nil, Deny(ReasonCertificateUsage, err)
	}
	return nil, Deny(ReasonCertificateInvalid, err)
}

// checkRevocation applies the configured CRLs to every certificate of a verified chain whose
// issuer has one. A CRL applies to a certificate when its issuer name equals the certificate's
// issuer and its signature verifies with the chain's issuer certificate.
func (c *Config) checkRevocation(chains [][]*x509.Certificate, now time.Time) error {
	if len(c.crls) == 0 {
		return nil
	}
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			for _, l := range c.crls {
				if !l.Issues(cert, issuer) {
					continue
				}
				if l.Revoked(cert) {
					return Deny(ReasonCertificateRevoked, fmt.Errorf("serial %s revoked by CRL of %s", cert.SerialNumber, cert.Issuer))
				}
				if next := l.List().NextUpdate; now.After(next) && c.crlExpired == CRLExpiredDeny {
					return Deny(ReasonCRLExpired, fmt.Errorf("CRL of %s expired at %s", cert.Issuer, next.UTC().Format(time.RFC3339)))
				}
			}
		}
	}
	return nil
}

// leafValid checks the leaf's validity window: all that remains to check of a pinned
// certificate, and the first check of a chain, named precisely.
func leafValid(p *Presented, now time.Time) error {
	if now.Before(p.Leaf.NotBefore) {
		return Deny(ReasonCertificateNotYetValid, fmt.Errorf("not valid before %s", p.Leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if now.After(p.Leaf.NotAfter) {
		return Deny(ReasonCertificateExpired, fmt.Errorf("expired at %s", p.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return nil
}

// onlineRevocation asks OCSP responders and CRL distribution points (revocation.mode) about the
// certificates of the verified chain below its anchor, and applies the failure policy. A leaf
// without any revocation URL has an unknown status; an intermediate without one is skipped.
// softFail reports that an unknown status was let through, so the result must not be cached.
func (c *Config) onlineRevocation(ctx context.Context, chain []*x509.Certificate, fail revocation.FailurePolicy, now time.Time) (until time.Time, softFail bool, err error) {
	if c.rt.revocation == nil {
		return time.Time{}, false, nil
	}
	for i := 0; i+1 < len(chain); i++ {
		res := c.rt.revocation.Check(ctx, chain[i], chain[i+1], c.revocationMode, now)
		if i > 0 && res.Status == revocation.Unknown && errors.Is(res.Err, revocation.ErrNoURL) {
			// An intermediate that names no OCSP responder or CRL cannot be checked online
			// (common in private PKIs); crl_files still cover it. The leaf has no such pass.
			continue
		}
		if err := revocation.Decide(res, fail); err != nil {
			if errors.Is(err, revocation.ErrRevoked) {
				return time.Time{}, false, Deny(ReasonCertificateRevoked, err)
			}
			return time.Time{}, false, Deny(ReasonRevocationUnknown, err)
		}
		if res.Status != revocation.Good {
			softFail = true
			continue
		}
		if !res.NextUpdate.IsZero() && (until.IsZero() || res.NextUpdate.Before(until)) {
			until = res.NextUpdate
		}
	}
	return until, softFail, nil
}
