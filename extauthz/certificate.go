package extauthz

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/certbind/certbind/extauthz/xfcc"
	"github.com/certbind/certbind/policy"
)

// certSources is the raw certificate material of one request.
type certSources struct {
	peer        string // attributes.source.certificate: URL-encoded PEM of the leaf, "" when none
	xfcc        string // x-forwarded-client-cert
	xfccPresent bool
	// destination is the CheckRequest's destination principal: the proxy's own identity.
	destination string
}

// certificate reconciles the request's certificate sources into the certificate to decide on.
// A nil certificate and a nil error mean the request carries none; an error is a deny
// (policy.Deny) with its reason. With both sources present they
// must name the same certificate: XFCC Hash and Cert are checked against the peer certificate.
func certificate(src certSources, set *settings) (*policy.Presented, error) {
	s := set.sources
	if s.Peer == policy.SourceIgnore {
		src.peer = ""
	}
	if s.XFCC == policy.SourceIgnore {
		src.xfcc, src.xfccPresent = "", false
	}
	if s.Peer == policy.SourceRequire && src.peer == "" {
		return nil, policy.Deny(policy.ReasonNoCertificate, errors.New("certificate_sources.peer is require and the proxy sent no peer certificate"))
	}
	if s.XFCC == policy.SourceRequire && !src.xfccPresent {
		return nil, policy.Deny(policy.ReasonNoCertificate, errors.New("certificate_sources.xfcc is require and the request has no x-forwarded-client-cert"))
	}

	var peer []byte
	if src.peer != "" {
		// Envoy's include_peer_certificate: the leaf's PEM, URL-encoded like an XFCC Cert.
		der, err := xfcc.DecodeCert(src.peer)
		if err != nil {
			return nil, policy.Deny(policy.ReasonCertificateMalformed, fmt.Errorf("peer certificate: %w", err))
		}
		peer = der
	}

	var elem *xfcc.Element
	if src.xfccPresent {
		e, err := parseXFCC(src.xfcc, set)
		if err != nil {
			return nil, err
		}
		if !trustedProxy(e, src.destination, set.trusted) {
			return nil, policy.Deny(policy.ReasonXFCCUntrusted, fmt.Errorf("XFCC element by %.200q, destination %.200q: not in xfcc.trusted_proxies", e.By, src.destination))
		}
		elem = &e
	}

	var leaf []byte
	var intermediates [][]byte
	switch {
	case peer != nil && elem != nil:
		// When the element's leaf is the peer certificate, Parse has checked Hash against it.
		if l, err := elem.Leaf(); err != nil || !bytes.Equal(l, peer) {
			if sum := sha256.Sum256(peer); elem.Hash != nil && !bytes.Equal(elem.Hash, sum[:]) {
				return nil, policy.Deny(policy.ReasonCertificateMismatch, errors.New("XFCC Hash differs from the peer certificate"))
			}
			if err == nil {
				return nil, policy.Deny(policy.ReasonCertificateMismatch, errors.New("XFCC Cert differs from the peer certificate"))
			}
		}
		leaf = peer
		if len(elem.Chain) > 1 {
			intermediates = elem.Chain[1:]
		}
	case peer != nil:
		leaf = peer
	case elem != nil && set.elements == xfcc.PolicyLast:
		// With "last", a client certificate whose URI or DNS SAN holds a ',' can make Envoy emit
		// a forged last element (envoy#32945): only the peer certificate can confirm it.
		return nil, policy.Deny(policy.ReasonNoCertificate, errors.New("xfcc.elements is last: the peer certificate (Envoy include_peer_certificate) must confirm the XFCC element"))
	case elem != nil:
		l, err := elem.Leaf()
		if err != nil {
			return nil, policy.Deny(policy.ReasonNoCertificate, errors.New("x-forwarded-client-cert carries no Cert or Chain (enable cert and chain in Envoy's set_current_client_cert_details)"))
		}
		leaf = l
		if len(elem.Chain) > 1 {
			intermediates = elem.Chain[1:]
		}
	default:
		return nil, nil
	}
	p, err := set.parse(leaf, intermediates)
	if err != nil {
		return nil, policy.Deny(policy.ReasonCertificateMalformed, err)
	}
	return p, nil
}

func parseXFCC(header string, set *settings) (xfcc.Element, error) {
	elems, err := xfcc.Parse(header, set.limits)
	if err != nil {
		return xfcc.Element{}, policy.Deny(xfccReason(err), err)
	}
	e, err := xfcc.Select(elems, set.elements)
	if err != nil {
		return xfcc.Element{}, policy.Deny(xfccReason(err), err)
	}
	return e, nil
}

func xfccReason(err error) policy.Reason {
	switch {
	case errors.Is(err, xfcc.ErrTooManyElements):
		return policy.ReasonXFCCElements
	case errors.Is(err, xfcc.ErrChainTooLong):
		return policy.ReasonChainTooLong
	case errors.Is(err, xfcc.ErrHashMismatch), errors.Is(err, xfcc.ErrChainMismatch):
		return policy.ReasonCertificateMismatch
	}
	return policy.ReasonXFCCMalformed
}

// trustedProxy: with no trusted_proxies configured every XFCC is honoured (the proxy in front
// is trusted to sanitize it); otherwise the element's By, or the proxy's own identity in the
// CheckRequest, must be listed.
func trustedProxy(e xfcc.Element, destination string, trusted []string) bool {
	if len(trusted) == 0 {
		return true
	}
	for _, t := range trusted {
		if t == destination {
			return true
		}
		for _, by := range e.By {
			if by == t {
				return true
			}
		}
	}
	return false
}
