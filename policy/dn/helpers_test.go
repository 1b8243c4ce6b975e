package dn

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Attribute type OIDs used in expectations, written out independently of
// the package's table.
var (
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSN     = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidSerial = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidC      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidOrgID  = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidUID    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidDC     = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidEmail  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

var sentinels = []error{ErrEmpty, ErrSyntax, ErrUnknownAttribute, ErrNUL, ErrEncoding}

// sentinelOf returns the one sentinel err wraps, or nil.
func sentinelOf(err error) error {
	var found error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			if found != nil {
				return nil
			}
			found = s
		}
	}
	return found
}

// certs are the C.* certificates of vectors/rfc8705-vectors.md.
var certFiles = []string{
	"01-simple.pem",
	"02-specials.pem",
	"03-hash-spaces.pem",
	"04-multivalued.pem",
	"05-email-dc-uid.pem",
	"06-utf8.pem",
	"07-repeated-ou.pem",
	"08-cn-first.pem",
	"09-orgid-serial.pem",
	"10-case-printable.pem",
	"11-sans.pem",
}

func loadCert(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		tb.Fatalf("%s: no PEM block", name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return cert
}

func mustParse(tb testing.TB, s string) Name {
	tb.Helper()
	n, err := Parse(s)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", s, err)
	}
	return n
}

func mustFromDER(tb testing.TB, raw []byte) Name {
	tb.Helper()
	n, err := FromDER(raw)
	if err != nil {
		tb.Fatalf("FromDER(%x): %v", raw, err)
	}
	return n
}

// registrable reports whether a Name could have come from Parse: at least
// one RDN, no empty value, no attribute type twice in one RDN.
func registrable(n Name) bool {
	rdns := n.RDNs()
	if len(rdns) == 0 {
		return false
	}
	for _, rdn := range rdns {
		for i, a := range rdn {
			if a.Value == "" {
				return false
			}
			for _, b := range rdn[:i] {
				if a.Type.Equal(b.Type) {
					return false
				}
			}
		}
	}
	return true
}

// DER builders, independent of the package's own encoder.

func tlv(tag byte, content ...[]byte) []byte {
	var body []byte
	for _, c := range content {
		body = append(body, c...)
	}
	out := []byte{tag}
	switch n := len(body); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	return append(out, body...)
}

func oidDER(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return b
}

// atv builds an AttributeTypeAndValue with the given value tag and contents.
func atv(oid asn1.ObjectIdentifier, tag byte, value string) []byte {
	return tlv(0x30, oidDER(oid), tlv(tag, []byte(value)))
}

func set(atvs ...[]byte) []byte { return tlv(0x31, atvs...) }
func seq(rdns ...[]byte) []byte { return tlv(0x30, rdns...) }
