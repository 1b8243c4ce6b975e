package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certbind/certbind/testenv/pki"
)

// tbsOf returns the signed part of an OCSP response, or nil.
func tbsOf(der []byte) []byte {
	var outer respOuter
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil
	}
	var basic respBasic
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		return nil
	}
	return basic.TBSResponseData.Raw
}

// FuzzValidateOCSP: garbage never panics, and only a response whose signed content is one the
// issuer produced can be Good or Revoked.
func FuzzValidateOCSP(f *testing.F) {
	root := pki.NewRoot("Fuzz Root", pki.ValidFor(t0.Add(-time.Hour), 48*time.Hour))
	inter := root.Intermediate("Fuzz Inter")
	leaf := inter.Leaf("client")
	delegate := inter.Leaf("OCSP Responder", pki.EKU(x509.ExtKeyUsageOCSPSigning))
	mk := func(st int, signer *pki.Cert, embed bool) []byte {
		if signer == nil {
			signer = inter
		}
		tmpl := status(st, leaf.Cert.SerialNumber, t0.Add(-time.Hour), t0.Add(time.Hour))
		if embed {
			tmpl.Certificate = signer.Cert
		}
		der, err := ocsp.CreateResponse(inter.Cert, signer.Cert, tmpl, signer.Key)
		if err != nil {
			f.Fatal(err)
		}
		return der
	}
	var signed [][]byte
	for _, der := range [][]byte{mk(ocsp.Good, nil, false), mk(ocsp.Revoked, nil, true), mk(ocsp.Unknown, nil, false), mk(ocsp.Good, delegate, true)} {
		f.Add(der)
		signed = append(signed, tbsOf(der))
	}
	f.Add(ocsp.TryLaterErrorResponse)
	f.Add([]byte{0x30, 0x00})
	c := NewChecker(Options{})
	f.Fuzz(func(t *testing.T, der []byte) {
		r, _ := c.validateOCSP(der, leaf.Cert, inter.Cert, "http://ocsp.example", t0)
		if (r.Status == Unknown) != (r.Err != nil) {
			t.Fatalf("Status %v with Err %v", r.Status, r.Err)
		}
		if r.Status == Unknown {
			return
		}
		tbs := tbsOf(der)
		for _, s := range signed {
			if bytes.Equal(s, tbs) {
				return
			}
		}
		t.Fatalf("%v from content the issuer never signed", r.Status)
	})
}

// FuzzParseCRL: garbage never panics, and a CRL only answers when the issuer's signature holds.
func FuzzParseCRL(f *testing.F) {
	root := pki.NewRoot("Fuzz Root", pki.ValidFor(t0.Add(-time.Hour), 48*time.Hour))
	inter := root.Intermediate("Fuzz Inter")
	leaf := inter.Leaf("client")
	der := inter.CRL(t0.Add(-time.Hour), t0.Add(time.Hour), leaf)
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	f.Add(inter.CRL(t0.Add(-time.Hour), t0.Add(time.Hour)))
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseCRL(data)
		if err != nil {
			return
		}
		if e.list == nil || e.revoked == nil {
			t.Fatal("parsed CRL without list or index")
		}
		r := e.evaluate(leaf.Cert, inter.Cert, "http://crl.example/crl", t0, time.Minute)
		if (r.Status == Unknown) != (r.Err != nil) {
			t.Fatalf("Status %v with Err %v", r.Status, r.Err)
		}
		if r.Status != Unknown && e.list.CheckSignatureFrom(inter.Cert) != nil {
			t.Fatalf("%v from a CRL the issuer did not sign", r.Status)
		}
	})
}
