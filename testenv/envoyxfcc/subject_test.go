package envoyxfcc

import (
	"encoding/asn1"
	"errors"
	"path/filepath"
	"testing"
)

// TestFormatSubjectRFC8705 renders the generated certificates of rfc8705-vectors.md section C
// and expects the "OpenSSL -nameopt RFC2253" lines (OpenSSL 3.0.19, ESC_MSB form).
// FormatSubject (BoringSSL, what Envoy writes) differs only where BoringSSL's object table
// lacks organizationIdentifier (C.09).
func TestFormatSubjectRFC8705(t *testing.T) {
	tests := []struct {
		file    string
		openSSL string
		envoy   string // when it differs from openSSL
	}{
		{"01-simple.pem", `CN=client-1,OU=Eng,O=Example Corp,C=US`, ""},
		{"02-specials.pem", `CN=back\\slash,OU=a\+b \"q\" \<x\>\;y,O=Sue\, Grabbit and Runn,C=GB`, ""},
		{"03-hash-spaces.pem", `CN=\#hash,OU=trail\ ,O=\ lead`, ""},
		{"04-multivalued.pem", `CN=J. Smith+OU=Sales,O=Widget Inc.,C=US`, ""},
		{"05-email-dc-uid.pem", `emailAddress=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com`, ""},
		{"06-utf8.pem", `CN=Lu\C4\8Di\C4\87,C=HR`, ""},
		{"07-repeated-ou.pem", `CN=svc,OU=a-first,OU=b-second,O=Example,C=US`, ""},
		{"08-cn-first.pem", `C=US,O=Example,CN=reversed`, ""},
		{"09-orgid-serial.pem", `CN=0015800001HQQrZAAX,serialNumber=1234,organizationIdentifier=PSDGB-OB-Unknown0015800001HQQrZAAX,O=OpenBanking,C=GB`,
			`CN=0015800001HQQrZAAX,serialNumber=1234,2.5.4.97=#0C2250534447422D4F422D556E6B6E6F776E30303135383030303031485151725A414158,O=OpenBanking,C=GB`},
		{"10-case-printable.pem", `CN=Client  Two,O=EXAMPLE corp,C=us`, ""},
		{"11-sans.pem", `CN=san-client`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := testdataCert(t, filepath.Join("rfc8705", tt.file))
			got, err := formatSubjectOpenSSL(c.RawSubject)
			if err != nil || got != tt.openSSL {
				t.Errorf("formatSubjectOpenSSL = %q, %v\nwant                   %q", got, err, tt.openSSL)
			}
			want := tt.envoy
			if want == "" {
				want = tt.openSSL
			}
			got, err = FormatSubject(c.RawSubject)
			if err != nil || got != want {
				t.Errorf("FormatSubject = %q, %v\nwant            %q", got, err, want)
			}
		})
	}
}

// TestFormatSubjectEnvoyCerts: the subjects Envoy printed for its test certificates.
func TestFormatSubjectEnvoyCerts(t *testing.T) {
	for file, want := range map[string]string{
		"clientcert.pem": "emailAddress=frontend-team@lyft.com,CN=Test Frontend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US",
		"servercert.pem": "emailAddress=backend-team@lyft.com,CN=Test Backend Team,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US",
		"cacert.pem":     "CN=Test CA,OU=Lyft Engineering,O=Lyft,L=San Francisco,ST=California,C=US",
	} {
		got, err := FormatSubject(vectorCert(t, file).RawSubject)
		if err != nil || got != want {
			t.Errorf("%s: FormatSubject = %q, %v; want %q", file, got, err, want)
		}
	}
}

// attr is one attribute of a hand-built name.
type attr struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
	class int // asn1.ClassUniversal unless set
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrgID = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidUID44 = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 44}
)

func cn(tag int, value string) []attr { return []attr{{oid: oidCN, tag: tag, value: value}} }

// rawName encodes an RDNSequence of the given RDNs, keeping attribute order within each SET.
func rawName(tb testing.TB, rdns ...[]attr) []byte {
	tb.Helper()
	var seq []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			b, err := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{a.oid, asn1.RawValue{Class: a.class, Tag: a.tag, Bytes: []byte(a.value)}})
			if err != nil {
				tb.Fatal(err)
			}
			set = append(set, b...)
		}
		b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: set})
		if err != nil {
			tb.Fatal(err)
		}
		seq = append(seq, b...)
	}
	b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: seq})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func bmp(runes ...rune) string {
	var b []byte
	for _, r := range runes {
		b = append(b, byte(r>>8), byte(r))
	}
	return string(b)
}

// TestFormatSubjectEscaping pins X509_NAME_print_ex(XN_FLAG_RFC2253) byte by byte. The
// openSSL column was checked against `openssl x509 -nameopt RFC2253` (OpenSSL 3.0.19) for
// every name OpenSSL loads; the envoy column follows BoringSSL's a_strex.cc and
// name_print.cc. errEnvoy/errOpenSSL: ErrBadSubject where neither library loads such a
// certificate.
func TestFormatSubjectEscaping(t *testing.T) {
	longOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1}
	for len(longOID.String()) < 90 {
		longOID = append(longOID, 123456789)
	}
	tests := []struct {
		name                 string
		raw                  []byte
		envoy, openSSL       string
		errEnvoy, errOpenSSL error
	}{
		{"empty name", rawName(t), "", "", nil, nil},
		{"empty value", rawName(t, cn(12, "")), `CN=`, `CN=`, nil, nil},
		{"RFC 2253 specials", rawName(t, cn(12, `a,b+c"d\e<f>g;h=i`)), `CN=a\,b\+c\"d\\e\<f\>g\;h=i`, `CN=a\,b\+c\"d\\e\<f\>g\;h=i`, nil, nil},
		{"leading and trailing spaces", rawName(t, cn(12, "  a  ")), `CN=\  a \ `, `CN=\  a \ `, nil, nil},
		{"leading hash only", rawName(t, cn(12, "#a#")), `CN=\#a#`, `CN=\#a#`, nil, nil},
		{"single hash", rawName(t, cn(12, "#")), `CN=\#`, `CN=#`, nil, nil},
		{"single space", rawName(t, cn(12, " ")), `CN=\ `, `CN=\ `, nil, nil},
		{"control bytes", rawName(t, cn(12, "\x00a\x1f\x7f\n")), `CN=\00a\1F\7F\0A`, `CN=\00a\1F\7F\0A`, nil, nil},
		{"UTF-8", rawName(t, cn(12, "Lučić ✓")), `CN=Lu\C4\8Di\C4\87 \E2\9C\93`, `CN=Lu\C4\8Di\C4\87 \E2\9C\93`, nil, nil},
		{"invalid UTF-8", rawName(t, cn(12, "a\xff")), ``, ``, ErrBadSubject, ErrBadSubject},
		{"invalid UTF-8 under an unknown type", rawName(t, []attr{{oid: oidOrgID, tag: 12, value: "\xff"}}), ``, ``, ErrBadSubject, ErrBadSubject},
		{"T61String is Latin-1", rawName(t, cn(20, "caf\xe9")), `CN=caf\C3\A9`, `CN=caf\C3\A9`, nil, nil},
		{"PrintableString with a high byte", rawName(t, cn(19, "a\xe9")), `CN=a\C3\A9`, `CN=a\C3\A9`, nil, nil},
		{"IA5String", rawName(t, cn(22, "a@b")), `CN=a@b`, `CN=a@b`, nil, nil},
		{"NumericString", rawName(t, cn(18, "123")), `CN=123`, `CN=123`, nil, nil},
		{"VisibleString", rawName(t, cn(26, "v")), `CN=v`, `CN=v`, nil, nil},
		{"BMPString", rawName(t, cn(30, bmp('é', '€', ' '))), `CN=\C3\A9\E2\82\AC\ `, `CN=\C3\A9\E2\82\AC\ `, nil, nil},
		{"BMPString odd length", rawName(t, cn(30, "abc")), ``, ``, ErrBadSubject, ErrBadSubject},
		{"BMPString surrogate", rawName(t, cn(30, bmp('a', 0xd800, 'b'))), ``, ``, ErrBadSubject, ErrBadSubject},
		{"UniversalString out of range", rawName(t, cn(28, "\x00\x11\x00\x00")), ``, ``, ErrBadSubject, ErrBadSubject},
		{"error after a good RDN", rawName(t, cn(12, "\xff"), cn(12, "ok")), ``, ``, ErrBadSubject, ErrBadSubject},
		{"UniversalString", rawName(t, cn(28, "\x00\x01\xd1\x1e\x00\x00\x00#")), `CN=\F0\9D\84\9E#`, `CN=\F0\9D\84\9E#`, nil, nil},
		{"VideotexString", rawName(t, cn(21, "abc")), `CN=#1503616263`, `CN=#1503616263`, nil, nil},
		{"GeneralString", rawName(t, cn(27, "abc")), `CN=#1B03616263`, `CN=#1B03616263`, nil, nil},
		{"OCTET STRING value", rawName(t, cn(4, "abc")), `CN=#0403616263`, `CN=#0403616263`, nil, nil},
		{"context-specific value", rawName(t, []attr{{oid: oidCN, tag: 0, value: "x", class: asn1.ClassContextSpecific}}), `CN=#800178`, `CN=#800178`, nil, nil},
		{"unknown attribute type", rawName(t, []attr{{oid: asn1.ObjectIdentifier{1, 2, 3, 4}, tag: 12, value: "x,y"}}), `1.2.3.4=#0C03782C79`, `1.2.3.4=#0C03782C79`, nil, nil},
		{"organizationIdentifier", rawName(t, []attr{{oid: oidOrgID, tag: 12, value: "PSD"}}), `2.5.4.97=#0C03505344`, `organizationIdentifier=PSD`, nil, nil},
		{"uid", rawName(t, []attr{{oid: oidUID44, tag: 12, value: "u"}}), `0.9.2342.19200300.100.1.44=#0C0175`, `uid=u`, nil, nil},
		{"OID longer than 79 characters", rawName(t, []attr{{oid: longOID, tag: 12, value: "x"}}), longOID.String()[:79] + `=#0C0178`, longOID.String()[:79] + `=#0C0178`, nil, nil},
		{"multi-valued RDN printed in reverse", rawName(t, []attr{{oid: oidC, tag: 19, value: "US"}, {oid: oidO, tag: 12, value: "x"}, {oid: oidCN, tag: 12, value: "y"}}, cn(12, "z")), `CN=z,CN=y+O=x+C=US`, `CN=z,CN=y+O=x+C=US`, nil, nil},
		{"empty RDN", rawName(t, cn(12, "a"), nil, cn(12, "b")), ``, `CN=b,CN=a`, ErrBadSubject, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatSubject(tt.raw)
			if got != tt.envoy || !errors.Is(err, tt.errEnvoy) {
				t.Errorf("FormatSubject = %q, %v; want %q, %v", got, err, tt.envoy, tt.errEnvoy)
			}
			got, err = formatSubjectOpenSSL(tt.raw)
			if got != tt.openSSL || !errors.Is(err, tt.errOpenSSL) {
				t.Errorf("formatSubjectOpenSSL = %q, %v; want %q, %v", got, err, tt.openSSL, tt.errOpenSSL)
			}
		})
	}
}

func TestFormatSubjectMalformed(t *testing.T) {
	good := rawName(t, cn(12, "a"))
	for name, raw := range map[string][]byte{
		"empty input":       nil,
		"not a SEQUENCE":    {0x31, 0x00},
		"trailing data":     append(append([]byte{}, good...), 0),
		"truncated":         good[:len(good)-1],
		"RDN not a SET":     {0x30, 0x02, 0x30, 0x00},
		"ATV not SEQUENCE":  {0x30, 0x04, 0x31, 0x02, 0x31, 0x00},
		"ATV without value": {0x30, 0x09, 0x31, 0x07, 0x30, 0x05, 0x06, 0x03, 0x55, 0x04, 0x03},
		"indefinite length": {0x30, 0x80, 0x00, 0x00},
	} {
		if got, err := FormatSubject(raw); got != "" || !errors.Is(err, ErrBadSubject) {
			t.Errorf("%s: FormatSubject = %q, %v; want ErrBadSubject", name, got, err)
		}
		if got, err := formatSubjectOpenSSL(raw); got != "" || !errors.Is(err, ErrBadSubject) {
			t.Errorf("%s: formatSubjectOpenSSL = %q, %v; want ErrBadSubject", name, got, err)
		}
	}
}
