package dn

import (
	"encoding/asn1"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	type rdns = [][]Attribute
	tests := []struct {
		name string
		in   string
		want rdns // ASN.1 order: least specific first
	}{
		// RFC 4514 §4 examples; D.1 lists what go-ldap makes of them.
		{"rfc4514/uid-dc", "UID=jsmith,DC=example,DC=net",
			rdns{{{oidDC, "net"}}, {{oidDC, "example"}}, {{oidUID, "jsmith"}}}},
		{"rfc4514/multivalued", "OU=Sales+CN=J. Smith,DC=example,DC=net",
			rdns{{{oidDC, "net"}}, {{oidDC, "example"}}, {{oidOU, "Sales"}, {oidCN, "J. Smith"}}}},
		{"rfc4514/escaped-quote-comma", `CN=James \"Jim\" Smith\, III,DC=example,DC=net`,
			rdns{{{oidDC, "net"}}, {{oidDC, "example"}}, {{oidCN, `James "Jim" Smith, III`}}}},
		{"rfc4514/hex-escape-cr", `CN=Before\0dAfter,DC=example,DC=net`,
			rdns{{{oidDC, "net"}}, {{oidDC, "example"}}, {{oidCN, "Before\rAfter"}}}},
		{"rfc4514/utf8-hex-escapes", `CN=Lu\C4\8Di\C4\87`, rdns{{{oidCN, "Lučić"}}}},
		{"rfc4514/steve-kille", "CN=Steve Kille,O=Isode Limited,C=GB",
			rdns{{{oidC, "GB"}}, {{oidO, "Isode Limited"}}, {{oidCN, "Steve Kille"}}}},
		{"rfc4514/sue-grabbit", `CN=L. Eagle,O=Sue\, Grabbit and Runn,C=GB`,
			rdns{{{oidC, "GB"}}, {{oidO, "Sue, Grabbit and Runn"}}, {{oidCN, "L. Eagle"}}}},
		{"rfc4514/hex-escape-upper", `CN=Before\0DAfter,O=Test,C=GB`,
			rdns{{{oidC, "GB"}}, {{oidO, "Test"}}, {{oidCN, "Before\rAfter"}}}},
		{"rfc4514/sn-is-surname", `SN=Lu\C4\8Di\C4\87`, rdns{{{oidSN, "Lučić"}}}},

		// Spaces (U+0020) around ',', '+', '=' and at the ends are syntax.
		{"spaces", "  CN = client-1 ,  OU=Eng + O = x ,C=US  ",
			rdns{{{oidC, "US"}}, {{oidOU, "Eng"}, {oidO, "x"}}, {{oidCN, "client-1"}}}},
		{"escaped-spaces-kept", `CN=\ lead and trail\ `, rdns{{{oidCN, " lead and trail "}}}},
		{"inner-spaces-kept", "CN=Client  Two", rdns{{{oidCN, "Client  Two"}}}},
		{"space-escaped-as-hex", `CN=trail\20`, rdns{{{oidCN, "trail "}}}},
		{"only-escaped-spaces", `CN=\ \ `, rdns{{{oidCN, "  "}}}},
		{"unescaped-equals", "CN=a=b", rdns{{{oidCN, "a=b"}}}},
		{"inner-hash", "CN=a#b", rdns{{{oidCN, "a#b"}}}},
		{"escaped-leading-hash", `CN=\#hash`, rdns{{{oidCN, "#hash"}}}},
		{"all-escapable", `CN=\"\+\,\;\<\>\\\ \#\=`, rdns{{{oidCN, `"+,;<>\ #=`}}}},
		{"raw-utf8", "CN=Lučić", rdns{{{oidCN, "Lučić"}}}},
		{"tab-is-a-value-char", "CN=a\tb", rdns{{{oidCN, "a\tb"}}}},

		// Attribute types: names case-insensitive, aliases, dotted OIDs.
		{"lower-case-types", "cn=x,ou=y,o=z,c=US",
			rdns{{{oidC, "US"}}, {{oidO, "z"}}, {{oidOU, "y"}}, {{oidCN, "x"}}}},
		{"EMAILADDRESS", "EMAILADDRESS=a@b", rdns{{{oidEmail, "a@b"}}}},
		{"E", "e=a@b", rdns{{{oidEmail, "a@b"}}}},
		{"SERIALNUMBER", "SERIALNUMBER=1234", rdns{{{oidSerial, "1234"}}}},
		{"long-names", "commonName=x,organizationalUnitName=y,organizationName=z,countryName=US",
			rdns{{{oidC, "US"}}, {{oidO, "z"}}, {{oidOU, "y"}}, {{oidCN, "x"}}}},
		{"organizationIdentifier", "organizationIdentifier=PSDGB-OB-1", rdns{{{oidOrgID, "PSDGB-OB-1"}}}},
		{"dotted-known", "2.5.4.3=x", rdns{{{oidCN, "x"}}}},
		{"dotted-unknown-string", "1.2.3.4=foo", rdns{{{asn1.ObjectIdentifier{1, 2, 3, 4}, "foo"}}}},
		{"dotted-max-arc", "1.2.2147483647=x", rdns{{{asn1.ObjectIdentifier{1, 2, 2147483647}, "x"}}}},

		// #hex: DER of a character string, decoded whatever its tag.
		{"hex-utf8", "CN=#0c0548656c6c6f", rdns{{{oidCN, "Hello"}}}},
		{"hex-upper", "CN=#0C0548656C6C6F", rdns{{{oidCN, "Hello"}}}},
		{"hex-printable", "2.5.4.5=#130431323334", rdns{{{oidSerial, "1234"}}}},
		{"hex-ia5", "1.2.840.113549.1.9.1=#16126a736d697468406578616d706c652e636f6d",
			rdns{{{oidEmail, "jsmith@example.com"}}}},
		{"hex-bmp", "CN=#1e0600610062010d", rdns{{{oidCN, "abč"}}}},
		{"hex-t61-latin1", "CN=#1403e96166", rdns{{{oidCN, "éaf"}}}},
		{"hex-universal", "CN=#1c080000006100010000", rdns{{{oidCN, "a\U00010000"}}}},
		{"hex-then-spaces", "CN=#0c0161  , O=x", rdns{{{oidO, "x"}}, {{oidCN, "a"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := n.RDNs(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q).RDNs() =\n%v\nwant\n%v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrEmpty},
		{"spaces-only", "   ", ErrEmpty},

		{"unknown-name", "FOO=bar", ErrUnknownAttribute},
		{"unknown-name-2", "CN=a,emailAddress2=x", ErrUnknownAttribute},
		{"oid-prefix-form", "OID.2.5.4.3=x", ErrSyntax},
		{"S-is-not-ST", "S=CA", ErrUnknownAttribute},

		{"missing-equals", "CN", ErrSyntax},
		{"space-in-type", "C N=US", ErrSyntax},
		{"empty-value", "CN=", ErrSyntax},
		{"empty-value-mid", "CN=,O=x", ErrSyntax},
		{"empty-value-spaces", "CN=  ,O=x", ErrSyntax},
		{"trailing-comma", "CN=a,", ErrSyntax},
		{"leading-comma", ",CN=a", ErrSyntax},
		{"double-comma", "CN=a,,O=b", ErrSyntax},
		{"trailing-plus", "CN=a+", ErrSyntax},
		{"plus-without-type", "CN=a+b", ErrSyntax},
		{"type-starts-with-hyphen", "-CN=x", ErrSyntax},
		{"go-ldap/quoted-value", `CN="quoted, value",O=X`, ErrSyntax},
		{"quote-inside", `CN=a"b`, ErrSyntax},
		{"go-ldap/semicolon-separator", "CN=a;O=b", ErrSyntax},
		{"semicolon-after-hex", "CN=#0c0161;O=b", ErrSyntax},
		{"langle", "CN=a<b", ErrSyntax},
		{"rangle", "CN=a>b", ErrSyntax},
		{"unterminated-escape", `CN=abc\`, ErrSyntax},
		{"half-hex-escape-end", `CN=\4`, ErrSyntax},
		{"bad-hex-escape", `CN=\4g`, ErrSyntax},
		{"invalid-escape", `CN=\q`, ErrSyntax},
		{"hash-without-hex", "CN=#", ErrSyntax},
		{"hash-word", "CN=#hash", ErrSyntax},
		{"odd-hex", "CN=#0c016", ErrSyntax},
		{"junk-after-hex", "CN=#0c0161x", ErrSyntax},
		{"junk-after-hex-space", "CN=#0c0161 x", ErrSyntax},
		{"oid-one-arc", "1=x", ErrSyntax},
		{"oid-leading-zero", "1.02=x", ErrSyntax},
		{"oid-first-arc-3", "3.1=x", ErrSyntax},
		{"oid-second-arc-40", "1.40=x", ErrSyntax},
		{"oid-trailing-dot", "2.5.4.3.=x", ErrSyntax},
		{"oid-empty-arc", "2..5=x", ErrSyntax},
		{"oid-arc-too-large", "1.2.2147483648=x", ErrSyntax},
		{"go-ldap/slash-form", "/C=US/O=Example Corp/OU=Eng/CN=client-1", ErrSyntax},
		{"jsrsasign-428/slash-form", "/C=GB/O=OpenBanking/OU=0014H00001lFE3TQAW/CN=M8kIuKVwwejkrErfwuJoO9", ErrSyntax},
		{"slash-form-leading-space", " /CN=x", ErrSyntax},
		{"duplicate-type-in-rdn", "OU=a+OU=b", ErrSyntax},
		{"duplicate-type-case", "CN=a+cn=b", ErrSyntax},
		{"duplicate-type-alias", "E=a@b+emailAddress=c@d", ErrSyntax},
		{"duplicate-type-oid", "CN=a+2.5.4.3=b", ErrSyntax},
		{"duplicate-same-value", "OU=a+OU=a", ErrSyntax},
		{"go-pkix-string-merged-ou", "CN=svc,OU=b-second+OU=a-first,O=Example,C=US", ErrSyntax},

		{"raw-nul", "CN=a\x00b", ErrNUL},
		{"escaped-nul", `CN=a\00b`, ErrNUL},
		{"escaped-nul-end", `CN=client-1\00,OU=Eng,O=Example Corp,C=US`, ErrNUL},
		{"hex-nul-utf8", "CN=#0c03610062", ErrNUL},
		{"hex-nul-bmp", "CN=#1e0400610000", ErrNUL},
		{"hex-nul-printable", "CN=#130100", ErrNUL},

		{"invalid-utf8-raw", "CN=\xff", ErrEncoding},
		{"invalid-utf8-escape", `CN=\C4`, ErrEncoding},
		{"invalid-utf8-escapes", `CN=\C4\28`, ErrEncoding},
		{"rfc4514/octet-string", "1.3.6.1.4.1.1466.0=#04024869", ErrEncoding},
		{"rfc4514/octet-string-2", "1.3.6.1.4.1.1466.0=#04024869,O=Test,C=GB", ErrEncoding},
		{"hex-integer", "CN=#020101", ErrEncoding},
		{"hex-truncated", "CN=#0c0261", ErrEncoding},
		{"hex-trailing", "CN=#0c016100", ErrEncoding},
		{"hex-indefinite", "CN=#0c80", ErrEncoding},
		{"hex-bad-utf8", "CN=#0c01ff", ErrEncoding},
		{"hex-printable-at", "CN=#130161407a", ErrEncoding},
		{"hex-ia5-8bit", "CN=#160180", ErrEncoding},
		{"hex-bmp-surrogate", "CN=#1e02d800", ErrEncoding},
		{"hex-universal-too-big", "CN=#1c0400110000", ErrEncoding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%q) = %q, %v; want %v", tc.in, n, err, tc.want)
			}
			if got := sentinelOf(err); got != tc.want {
				t.Errorf("Parse(%q) error %q wraps %v, want only %v", tc.in, err, got, tc.want)
			}
		})
	}
}

// TestParseErrorMessages pins the message format: "dn: position N: ...",
// N a byte offset into the input.
func TestParseErrorMessages(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"CN=a;O=b", `dn: position 4: unescaped ';' in value`},
		{"CN=a,O=b,CN=x+OU=y+FOO=z", `dn: position 19: unknown attribute type "FOO"`},
		{"CN=a,OU=x+ou=y", `dn: position 10: attribute type OU repeated in one RDN`},
		{`CN=abc\`, `dn: position 6: unterminated escape`},
		{"CN=J. Smith+Jr.,O=x", `dn: position 11: unescaped '+' not followed by an attribute type and '='`},
		{"CN=a,b,O=x", `dn: position 4: unescaped ',' not followed by an attribute type and '='`},
		{"CN=a, =b", `dn: position 4: unescaped ','`},
		{"C N=US", `dn: position 2: expected '=' after attribute type "C"`},
		{"CN=a,O=", `dn: position 7: empty value for O`},
		{"/C=US/CN=x", `dn: position 0: OpenSSL slash form`},
		{`CN=x\00`, `dn: position 4: escaped NUL`},
		{"C=US,1.3.6.1.4.1.1466.0=#04024869", `dn: position 24: #hex value: value has tag 0x04 (OCTET STRING), not a character string`},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error = %v, want prefix %q", tc.in, err, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// Already canonical: unchanged.
		{`CN=back\\slash,OU=a\+b \"q\" \<x\>\;y,O=Sue\, Grabbit and Runn,C=GB`,
			`CN=back\\slash,OU=a\+b \"q\" \<x\>\;y,O=Sue\, Grabbit and Runn,C=GB`},
		{`CN=\#hash,OU=trail\ ,O=\ lead`, `CN=\#hash,OU=trail\ ,O=\ lead`},
		{"OU=Sales+CN=J. Smith,O=Widget Inc.,C=US", "OU=Sales+CN=J. Smith,O=Widget Inc.,C=US"},
		// Syntax normalised: spaces, type names, escapes that are not needed.
		{"cn = x , ou=y + o=z", "CN=x,OU=y+O=z"},
		{"e=a@b,2.5.4.97=123,SERIALNUMBER=9", "emailAddress=a@b,organizationIdentifier=123,serialNumber=9"},
		{`CN=\61\=b`, "CN=a=b"},
		{`CN=Lu\C4\8Di\C4\87`, "CN=Lučić"},
		{"CN=#0c0548656c6c6f", "CN=Hello"},
		// Spaces: only leading and trailing ones need escaping.
		{`CN=\ `, `CN=\ `},
		{`CN=\ \ \ `, `CN=\  \ `},
		{`CN=a\ \ b`, `CN=a  b`},
		// Non-printable characters are escaped, so log lines stay one line.
		{`CN=Before\0dAfter`, `CN=Before\0DAfter`},
		{"CN=a\tb", `CN=a\09b`},
		{"CN=a\u00a0b", `CN=a\C2\A0b`},
		{"CN=a\u200bb", `CN=a\E2\80\8Bb`},
		{"CN=a\u2028b", `CN=a\E2\80\A8b`},
		// Unknown types: dotted OID and #hex of a UTF8String (RFC 4514 §2.4).
		{"1.2.3.4=foo", "1.2.3.4=#0c03666f6f"},
		{"1.2.3.4=#1303666f6f", "1.2.3.4=#0c03666f6f"},
	}
	for _, tc := range tests {
		n := mustParse(t, tc.in)
		got := n.String()
		if got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if back := mustParse(t, got); !back.Equal(n) || !reflect.DeepEqual(back.RDNs(), n.RDNs()) {
			t.Errorf("Parse(%q) = %v, not the same as Parse(%q)", got, back.RDNs(), tc.in)
		}
	}
}

func TestZeroName(t *testing.T) {
	var z Name
	if z.String() != "" || len(z.RDNs()) != 0 || !z.Equal(Name{}) {
		t.Errorf("zero Name: String %q, RDNs %v, Equal(zero) %v", z.String(), z.RDNs(), z.Equal(Name{}))
	}
	if z.Equal(mustParse(t, "CN=x")) || mustParse(t, "CN=x").Equal(z) {
		t.Error("zero Name equals a parsed Name")
	}
}
