package dn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFromDER(t *testing.T) {
	type rdns = [][]Attribute
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		der  []byte
		want rdns
	}{
		{"empty-sequence", seq(), rdns{}},
		{"utf8", seq(set(atv(oidCN, asn1.TagUTF8String, "Lučić"))), rdns{{{oidCN, "Lučić"}}}},
		{"printable-star-amp", seq(set(atv(oidCN, asn1.TagPrintableString, "*.a&b"))), rdns{{{oidCN, "*.a&b"}}}},
		{"ia5", seq(set(atv(oidEmail, asn1.TagIA5String, "a@b"))), rdns{{{oidEmail, "a@b"}}}},
		{"numeric", seq(set(atv(oidSerial, asn1.TagNumericString, "12 34"))), rdns{{{oidSerial, "12 34"}}}},
		{"visible", seq(set(atv(oidCN, tagVisibleString, "a~b"))), rdns{{{oidCN, "a~b"}}}},
		{"t61-latin1", seq(set(atv(oidCN, asn1.TagT61String, "caf\xe9"))), rdns{{{oidCN, "café"}}}},
		{"bmp", seq(set(atv(oidCN, asn1.TagBMPString, "\x00a\x01\x0d"))), rdns{{{oidCN, "ač"}}}},
		{"universal", seq(set(atv(oidCN, tagUniversalString, "\x00\x00\x00a\x00\x01\xf6\x00"))), rdns{{{oidCN, "a\U0001F600"}}}},
		{"empty-value-kept", seq(set(atv(oidCN, asn1.TagUTF8String, ""))), rdns{{{oidCN, ""}}}},
		{"long-form-length", seq(set(atv(oidCN, asn1.TagUTF8String, long))), rdns{{{oidCN, long}}}},
		{"unknown-oid", seq(set(atv(asn1.ObjectIdentifier{1, 2, 3, 2147483647}, asn1.TagUTF8String, "v"))),
			rdns{{{asn1.ObjectIdentifier{1, 2, 3, 2147483647}, "v"}}}},
		{"multivalued-order-kept", seq(set(atv(oidOU, asn1.TagUTF8String, "Sales"), atv(oidCN, asn1.TagUTF8String, "J"))),
			rdns{{{oidOU, "Sales"}, {oidCN, "J"}}}},
		{"repeated-type-in-rdn-kept", seq(set(atv(oidOU, asn1.TagUTF8String, "b"), atv(oidOU, asn1.TagUTF8String, "a"))),
			rdns{{{oidOU, "b"}, {oidOU, "a"}}}},
		{"repeated-rdns-kept", seq(rdnUTF8(oidOU, "b"), rdnUTF8(oidOU, "a"), rdnUTF8(oidOU, "b")),
			rdns{{{oidOU, "b"}}, {{oidOU, "a"}}, {{oidOU, "b"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := FromDER(tc.der)
			if err != nil {
				t.Fatalf("FromDER(%x): %v", tc.der, err)
			}
			if got := n.RDNs(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromDER(%x).RDNs() = %v, want %v", tc.der, got, tc.want)
			}
		})
	}
}

func rdnUTF8(oid asn1.ObjectIdentifier, v string) []byte {
	return set(atv(oid, asn1.TagUTF8String, v))
}

func TestFromDERErrors(t *testing.T) {
	cn := rdnUTF8(oidCN, "x")
	tests := []struct {
		name string
		der  []byte
		want error
	}{
		{"nul-utf8", seq(set(atv(oidCN, asn1.TagUTF8String, "admin\x00.evil"))), ErrNUL},
		{"nul-utf8-end", seq(set(atv(oidCN, asn1.TagUTF8String, "admin\x00"))), ErrNUL},
		{"nul-printable", seq(set(atv(oidCN, asn1.TagPrintableString, "a\x00"))), ErrNUL},
		{"nul-ia5", seq(set(atv(oidEmail, asn1.TagIA5String, "a\x00@b"))), ErrNUL},
		{"nul-t61", seq(set(atv(oidCN, asn1.TagT61String, "\x00"))), ErrNUL},
		// crypto/x509 strips a trailing BMP NUL; we refuse it.
		{"nul-bmp-terminator", seq(set(atv(oidCN, asn1.TagBMPString, "\x00a\x00\x00"))), ErrNUL},
		{"nul-universal", seq(set(atv(oidCN, tagUniversalString, "\x00\x00\x00\x00"))), ErrNUL},
		{"nul-in-second-rdn", seq(cn, set(atv(oidO, asn1.TagUTF8String, "\x00"))), ErrNUL},

		{"empty-input", nil, ErrEncoding},
		{"trailing-data", append(seq(cn), 0x00), ErrEncoding},
		{"trailing-sequence", append(seq(cn), seq(cn)...), ErrEncoding},
		{"outer-set", tlv(0x31, cn), ErrEncoding},
		{"rdn-not-set", seq(tlv(0x30, atv(oidCN, asn1.TagUTF8String, "x"))), ErrEncoding},
		{"empty-rdn", seq(set()), ErrEncoding},
		{"atv-not-sequence", seq(set(tlv(0x31, oidDER(oidCN), tlv(asn1.TagUTF8String, []byte("x"))))), ErrEncoding},
		{"atv-trailing", seq(set(tlv(0x30, oidDER(oidCN), tlv(asn1.TagUTF8String, []byte("x")), tlv(asn1.TagUTF8String, []byte("y"))))), ErrEncoding},
		{"atv-no-value", seq(set(tlv(0x30, oidDER(oidCN)))), ErrEncoding},
		{"type-not-oid", seq(set(tlv(0x30, tlv(asn1.TagUTF8String, []byte("CN")), tlv(asn1.TagUTF8String, []byte("x"))))), ErrEncoding},
		{"oid-empty", seq(set(tlv(0x30, tlv(asn1.TagOID), tlv(asn1.TagUTF8String, []byte("x"))))), ErrEncoding},
		{"oid-non-minimal", seq(set(tlv(0x30, tlv(asn1.TagOID, []byte{0x55, 0x80, 0x04}), tlv(asn1.TagUTF8String, []byte("x"))))), ErrEncoding},
		{"oid-unterminated", seq(set(tlv(0x30, tlv(asn1.TagOID, []byte{0x55, 0x84}), tlv(asn1.TagUTF8String, []byte("x"))))), ErrEncoding},
		{"oid-arc-too-large", seq(set(tlv(0x30, tlv(asn1.TagOID, []byte{0x2a, 0x88, 0x80, 0x80, 0x80, 0x00}), tlv(asn1.TagUTF8String, []byte("x"))))), ErrEncoding},
		{"octet-string", seq(set(atv(oidCN, asn1.TagOctetString, "Hi"))), ErrEncoding},
		{"integer", seq(set(atv(oidCN, asn1.TagInteger, "\x01"))), ErrEncoding},
		{"constructed-utf8", seq(set(tlv(0x30, oidDER(oidCN), tlv(0x2c, tlv(asn1.TagUTF8String, []byte("x")))))), ErrEncoding},
		{"invalid-utf8", seq(set(atv(oidCN, asn1.TagUTF8String, "\xc4"))), ErrEncoding},
		{"printable-at", seq(set(atv(oidCN, asn1.TagPrintableString, "a@b"))), ErrEncoding},
		{"printable-8bit", seq(set(atv(oidCN, asn1.TagPrintableString, "\xe9"))), ErrEncoding},
		{"ia5-8bit", seq(set(atv(oidEmail, asn1.TagIA5String, "\xe9@b"))), ErrEncoding},
		{"numeric-letter", seq(set(atv(oidSerial, asn1.TagNumericString, "12a"))), ErrEncoding},
		{"visible-control", seq(set(atv(oidCN, tagVisibleString, "a\tb"))), ErrEncoding},
		{"bmp-odd", seq(set(atv(oidCN, asn1.TagBMPString, "\x00a\x00"))), ErrEncoding},
		{"bmp-surrogate", seq(set(atv(oidCN, asn1.TagBMPString, "\xd8\x3d\xde\x00"))), ErrEncoding},
		{"bmp-noncharacter", seq(set(atv(oidCN, asn1.TagBMPString, "\xff\xfe"))), ErrEncoding},
		{"universal-len", seq(set(atv(oidCN, tagUniversalString, "\x00\x00a"))), ErrEncoding},
		{"universal-too-big", seq(set(atv(oidCN, tagUniversalString, "\x00\x11\x00\x00"))), ErrEncoding},
		{"universal-surrogate", seq(set(atv(oidCN, tagUniversalString, "\x00\x00\xd8\x00"))), ErrEncoding},
		{"indefinite-length", []byte{0x30, 0x80, 0x00, 0x00}, ErrEncoding},
		{"non-minimal-long-length", []byte{0x30, 0x81, 0x00}, ErrEncoding},
		{"non-minimal-leading-zero", []byte{0x30, 0x82, 0x00, 0x80}, ErrEncoding},
		{"length-too-large", []byte{0x30, 0x84, 0x01, 0x00, 0x00, 0x00}, ErrEncoding},
		{"truncated-length", []byte{0x30, 0x82, 0x01}, ErrEncoding},
		{"truncated-content", []byte{0x30, 0x05, 0x31}, ErrEncoding},
		{"truncated-tag", []byte{0x30}, ErrEncoding},
		{"high-tag-number", []byte{0x1f, 0x01, 0x00}, ErrEncoding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := FromDER(tc.der)
			if got := sentinelOf(err); got != tc.want {
				t.Fatalf("FromDER(%x) = %q, %v; want %v", tc.der, n, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "dn: DER offset ") {
				t.Errorf("error %q lacks the offset prefix", err)
			}
		})
	}
}

// TestFromDERMultiset: an RDN repeating a type (as Go's pkix.Name
// ToRDNSequence writes several OUs) is a multiset; Equal pairs values up.
func TestFromDERMultiset(t *testing.T) {
	mk := func(vs ...string) Name {
		var atvs [][]byte
		for _, v := range vs {
			atvs = append(atvs, atv(oidOU, asn1.TagUTF8String, v))
		}
		return mustFromDER(t, seq(set(atvs...)))
	}
	tests := []struct {
		a, b  []string
		match bool
	}{
		{[]string{"a", "b"}, []string{"b", "a"}, true},
		{[]string{"a", "A"}, []string{"A", "a"}, true},
		{[]string{"a", "a"}, []string{"a", "a"}, true},
		{[]string{"a", "a"}, []string{"a", "b"}, false},
		{[]string{"A", "a"}, []string{"a", "B"}, false},
		{[]string{"a", "b"}, []string{"a"}, false},
	}
	for _, tc := range tests {
		a, b := mk(tc.a...), mk(tc.b...)
		if a.Equal(b) != tc.match || b.Equal(a) != tc.match {
			t.Errorf("%v vs %v: Equal = %v/%v, want %v", tc.a, tc.b, a.Equal(b), b.Equal(a), tc.match)
		}
	}

	// More attributes than rdnEqual's stack buffer holds.
	var fwd, rev []string
	for i := range 40 {
		fwd = append(fwd, strings.Repeat("v", i+1))
		rev = append([]string{strings.ToUpper(strings.Repeat("v", i+1))}, rev...)
	}
	if !mk(fwd...).Equal(mk(rev...)) {
		t.Error("40-attribute RDN does not equal its reverse")
	}
	if mk(fwd...).Equal(mk(append(rev[1:], "x")...)) {
		t.Error("40-attribute RDN equals a different one")
	}
}

// TestGoCertificateWithSeveralOUs: crypto/x509 puts the OUs of a pkix.Name
// into one RDN. FromDER keeps that RDN; its rendering cannot be registered
// (Parse rejects a type repeated inside one RDN), so such a certificate is
// never matched by subject DN.
func TestGoCertificateWithSeveralOUs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "svc", OrganizationalUnit: []string{"a", "b"}, Organization: []string{"Example"}},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<32, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	n := mustFromDER(t, cert.RawSubject)
	want := [][]Attribute{{{oidO, "Example"}}, {{oidOU, "a"}, {oidOU, "b"}}, {{oidCN, "svc"}}}
	if got := n.RDNs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("RDNs() = %v, want %v", got, want)
	}
	if got := n.String(); got != "CN=svc,OU=a+OU=b,O=Example" {
		t.Errorf("String() = %q", got)
	}
	if _, err := Parse(n.String()); sentinelOf(err) != ErrSyntax {
		t.Errorf("Parse(%q) error = %v, want ErrSyntax", n.String(), err)
	}
	if n.Equal(mustParse(t, "CN=svc,OU=a,OU=b,O=Example")) || n.Equal(mustParse(t, "CN=svc,OU=b,OU=a,O=Example")) {
		t.Error("a multi-valued RDN equals separate RDNs")
	}
}

// TestFromDERAgainstEncodingASN1 checks FromDER against encoding/asn1's
// RDNSequence, which keeps the encoded order, for every C.* certificate.
func TestFromDERAgainstEncodingASN1(t *testing.T) {
	for _, f := range certFiles {
		cert := loadCert(t, f)
		var seq pkix.RDNSequence
		if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) != 0 {
			t.Fatalf("%s: asn1.Unmarshal: %v, %d bytes left", f, err, len(rest))
		}
		var want [][]Attribute
		for _, rdn := range seq {
			var r []Attribute
			for _, a := range rdn {
				r = append(r, Attribute{Type: a.Type, Value: a.Value.(string)})
			}
			want = append(want, r)
		}
		if got := mustFromDER(t, cert.RawSubject).RDNs(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: RDNs() = %v, want %v", f, got, want)
		}
	}
}

// TestFromDERDoesNotAlias: the Name keeps no reference to the caller's slice.
func TestFromDERDoesNotAlias(t *testing.T) {
	raw, _ := hex.DecodeString("3045310b300906035504061302555331153013060355040a0c0c4578616d706c6520436f7270310c300a060355040b0c03456e673111300f06035504030c08636c69656e742d31")
	n := mustFromDER(t, raw)
	before := n.String()
	copy(raw, bytes.Repeat([]byte{'z'}, len(raw)))
	if n.String() != before {
		t.Errorf("Name changed with its input: %q, was %q", n.String(), before)
	}
}
