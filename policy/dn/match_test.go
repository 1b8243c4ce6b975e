package dn

import (
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
)

type equalCase struct {
	name  string
	a, b  string
	match bool
	err   error // if set, Parse(a) or Parse(b) fails with it, so nothing matches
}

func runEqualCases(t *testing.T, tests []equalCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			na, errA := Parse(tc.a)
			nb, errB := Parse(tc.b)
			if tc.err != nil {
				if tc.match {
					t.Fatal("bad test: a parse error cannot match")
				}
				err := errors.Join(errA, errB)
				if err == nil || !errors.Is(err, tc.err) {
					t.Fatalf("Parse(%q), Parse(%q): %v; want %v", tc.a, tc.b, err, tc.err)
				}
				return
			}
			if errA != nil || errB != nil {
				t.Fatalf("Parse(%q): %v; Parse(%q): %v", tc.a, errA, tc.b, errB)
			}
			if got := na.Equal(nb); got != tc.match {
				t.Errorf("Parse(%q).Equal(Parse(%q)) = %v, want %v", tc.a, tc.b, got, tc.match)
			}
			if got := nb.Equal(na); got != tc.match {
				t.Errorf("Parse(%q).Equal(Parse(%q)) = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.match)
			}
		})
	}
}

// TestEqualGoLDAP: go-ldap v3 behaviours from vectors D.1.
func TestEqualGoLDAP(t *testing.T) {
	const email = "1.2.840.113549.1.9.1=#16126a736d697468406578616d706c652e636f6d,CN=John Smith"
	runEqualCases(t, []equalCase{
		{"spaces-after-commas", "CN=client-1, OU=Eng, O=Example Corp, C=US", "CN=client-1,OU=Eng,O=Example Corp,C=US", true, nil},
		// go-ldap has no alias table and says false; the OID is the same type.
		{"name-vs-oid", "emailAddress=jsmith@example.com,CN=John Smith", email, true, nil},
		{"ia5-vs-utf8", email, "1.2.840.113549.1.9.1=#0c126a736d697468406578616d706c652e636f6d,CN=John Smith", true, nil},
		{"multivalued-order", "OU=Sales+CN=J. Smith,DC=example,DC=net", "CN=J. Smith+OU=Sales,DC=example,DC=net", true, nil},
		// go-ldap false: it does not fold case or spaces; caseIgnoreMatch does.
		{"case-and-spaces", "CN=Client  Two,O=EXAMPLE corp,C=us", "CN=client two,O=example corp,C=US", true, nil},
		// go-ldap accepts these; we do not.
		{"semicolon", "CN=a;O=b", "CN=a,O=b", false, ErrSyntax},
		{"slash-form", "/C=US/O=Example Corp/OU=Eng/CN=client-1", "CN=client-1,OU=Eng,O=Example Corp,C=US", false, ErrSyntax},
	})
}

// TestEqualJava: OpenJDK 17 X500Principal.equals pairs from vectors D.2.
// Our result equals Java's equals column on every row.
func TestEqualJava(t *testing.T) {
	runEqualCases(t, []equalCase{
		{"type-case-spaces", "CN=client-1,OU=Eng,O=Example Corp,C=US", "cn=client-1, ou=Eng, o=Example Corp, c=US", true, nil},
		{"value-case", "CN=client-1,OU=Eng,O=Example Corp,C=US", "CN=CLIENT-1,OU=Eng,O=Example Corp,C=US", true, nil},
		{"reversed", "CN=client-1,OU=Eng,O=Example Corp,C=US", "C=US,O=Example Corp,OU=Eng,CN=client-1", false, nil},
		{"multivalued-order", "OU=Sales+CN=J. Smith,O=Widget Inc.,C=US", "CN=J. Smith+OU=Sales,O=Widget Inc.,C=US", true, nil},
		{"case-and-spaces", "CN=Client  Two,O=EXAMPLE corp,C=us", "CN=client two,O=example corp,C=US", true, nil},
	})
}

// TestEqualAuthelia: authelia/oauth2-provider TestEqualDistinguishedNames
// (vectors D.3), with Authelia's expectation except where RFC 4517 differs;
// each difference says so.
func TestEqualAuthelia(t *testing.T) {
	runEqualCases(t, []equalCase{
		{"ShouldMatchIdentical", "CN=test,O=Example", "CN=test,O=Example", true, nil},
		{"ShouldIgnoreWhitespace", "CN=test, O=Example", "CN=test,O=Example", true, nil},
		{"ShouldIgnoreAttributeTypeCase", "cn=test,o=Example", "CN=test,O=Example", true, nil},
		// Authelia: true. RFC 4517 §4.2.15: RDNs are compared in order.
		{"ShouldMatchReversedOrder", "O=Example,CN=test", "CN=test,O=Example", false, nil},
		{"ShouldNotMatchDifferentValues", "CN=other,O=Example", "CN=test,O=Example", false, nil},
		// Authelia: false. CN's equality rule is caseIgnoreMatch (RFC 4519 §2.3).
		{"ShouldNotMatchDifferentValueCase", "CN=TEST,O=Example", "CN=test,O=Example", true, nil},
		{"ShouldNotMatchDifferentLength", "CN=test", "CN=test,O=Example", false, nil},
		{"ShouldNotMatchArbitraryReordering", "CN=test,O=Example,C=AU", "O=Example,CN=test,C=AU", false, nil},
		{"ShouldHandleEscapedComma", "CN=test\\, inc,O=Example", "CN=test\\, inc,O=Example", true, nil},
		{"ShouldTreatEscapedCommaAsPartOfTheValue", "CN=test\\, inc", "CN=test\\,inc", false, nil},
		{"ShouldNotMatchEmptyAgainstValue", "", "CN=test", false, ErrEmpty},
		// Authelia: true. An empty DN cannot be registered: it would match
		// every certificate with an empty subject.
		{"ShouldMatchEmptyAgainstEmpty", "", "", false, ErrEmpty},
		// The next five agree with Authelia but depart from RFC 4518 §2.2,
		// which maps TAB, LF, VT and NBSP to SPACE before insignificant space
		// handling: only U+0020 is a space here.
		{"ShouldNotMatchTrailingTabInValue", "CN=test\t,O=Example", "CN=test,O=Example", false, nil},
		{"ShouldNotMatchLeadingTabInValue", "CN=\ttest,O=Example", "CN=test,O=Example", false, nil},
		{"ShouldNotMatchTrailingNewlineInValue", "CN=test\n,O=Example", "CN=test,O=Example", false, nil},
		{"ShouldNotMatchTrailingVerticalTabInValue", "CN=test\v,O=Example", "CN=test,O=Example", false, nil},
		{"ShouldNotMatchTrailingNonBreakingSpaceInValue", "CN=test\u00a0,O=Example", "CN=test,O=Example", false, nil},
		// Authelia: false. The escaped space is part of the value, but a
		// trailing space is insignificant to caseIgnoreMatch (RFC 4518 §2.6.1).
		{"ShouldNotMatchWhenTrailingSpaceIsEscaped", "CN=test\\ ,O=Example", "CN=test,O=Example", true, nil},
		{"ShouldStillMatchInsignificantSpaceAfterComma", "CN=test, O=Example", "CN=test,O=Example", true, nil},
	})
}

// TestEqualKeycloak: FIPS1402X509Test DN strings (vectors D.4): E and
// EMAILADDRESS are the same type.
func TestEqualKeycloak(t *testing.T) {
	runEqualCases(t, []equalCase{
		{"E-vs-EMAILADDRESS",
			"EMAILADDRESS=test@somecompany.com,CN=Test User,OU=Some Department,O=Some Company,ST=District of Columbia,C=US",
			"E=test@somecompany.com,CN=Test User,OU=Some Department,O=Some Company,ST=District of Columbia,C=US", true, nil},
	})
}

// TestEqualJanssen: the strings of jans-auth-server#120 (vectors D.5).
// Janssen matches them regardless of order; RDN order is significant here.
func TestEqualJanssen(t *testing.T) {
	forms := []string{
		"cn = myclient, ou = My Dept, o = My Company",
		"cn=myclient, ou=My Dept, o=My Company",
		"cn=myclient,ou=My Dept,o=My Company",
	}
	reordered := []string{
		"o=My Company,cn=myclient,ou=My Dept",
		"ou=My Dept,o=My Company,cn=myclient",
	}
	var tests []equalCase
	for i, a := range forms {
		for _, b := range forms[i+1:] {
			tests = append(tests, equalCase{"spacing/" + a + "|" + b, a, b, true, nil})
		}
		for _, b := range reordered {
			tests = append(tests, equalCase{"order/" + a + "|" + b, a, b, false, nil})
		}
	}
	tests = append(tests,
		equalCase{"reordered-pair", reordered[0], reordered[1], false, nil},
		equalCase{"values-differ", forms[0], "cn=myclient, ou=MyDept, o=MyCompany", false, nil},
		equalCase{"upper-case", forms[0], "CN=MYCLIENT,OU=MY DEPT,O=MY COMPANY", true, nil},
	)
	runEqualCases(t, tests)
}

// TestEqualOpenBanking: jsrsasign #483 (vectors D.6).
func TestEqualOpenBanking(t *testing.T) {
	runEqualCases(t, []equalCase{
		{"orgid-name-vs-oid", "CN=ABC,organizationIdentifier=123,O=XYZ,C=GB", "CN=ABC,2.5.4.97=123,O=XYZ,C=GB", true, nil},
		{"orgid-hex", "CN=ABC,organizationIdentifier=123,O=XYZ,C=GB", "CN=ABC,2.5.4.97=#0c03313233,O=XYZ,C=GB", true, nil},
	})
}

// TestEqualForgery: values that must not be confused with structure.
func TestEqualForgery(t *testing.T) {
	runEqualCases(t, []equalCase{
		{"escaped-comma-is-value", `CN=a\,O=evil`, "CN=a,O=evil", false, nil},
		{"escaped-comma-hex", `CN=a\2cO=evil`, "CN=a,O=evil", false, nil},
		{"escaped-comma-same", `CN=a\,O=evil`, `CN=a\2CO=evil`, true, nil},
		{"escaped-plus-is-value", `CN=a\+OU=b`, "CN=a+OU=b", false, nil},
		{"multivalued-vs-two-rdns", "OU=Sales+CN=J. Smith,O=Widget Inc.,C=US", "CN=J. Smith,OU=Sales,O=Widget Inc.,C=US", false, nil},
		{"multivalued-vs-two-rdns-2", "OU=Sales+CN=J. Smith,O=Widget Inc.,C=US", "OU=Sales,CN=J. Smith,O=Widget Inc.,C=US", false, nil},
		{"multivalued-subset", "OU=Sales+CN=J. Smith,O=W", "CN=J. Smith,O=W", false, nil},
		{"prefix", "CN=admin", "CN=admin,O=x", false, nil},
		{"suffix", "O=x", "CN=admin,O=x", false, nil},
		{"type-differs", "CN=x", "OU=x", false, nil},
		{"SN-is-not-serialNumber", "SN=1234", "serialNumber=1234", false, nil},
		{"nul-suffix", `CN=admin\00`, "CN=admin", false, ErrNUL},
		{"nul-hex", "CN=#0c0661646d696e00", "CN=admin", false, ErrNUL},
		{"inner-space-significant", "CN=ab", "CN=a b", false, nil},
		{"escaped-equals", `CN=a\=b`, "CN=a=b", true, nil},
	})
}

// TestEqualValueRules pins the equality rules of the package documentation.
func TestEqualValueRules(t *testing.T) {
	runEqualCases(t, []equalCase{
		// caseIgnoreMatch with insignificant space handling, U+0020 only.
		{"spaces-collapse", `CN=\  a   b \ `, "CN=a b", true, nil},
		{"spaces-hex", `CN=a\20\20b`, "CN=a b", true, nil},
		{"country-case", "C=us", "C=US", true, nil},
		{"serial-case", "serialNumber=ab12", "SERIALNUMBER=AB12", true, nil},
		{"uid-case", "UID=JSmith", "UID=jsmith", true, nil},
		{"tab-not-space", "CN=a\tb", "CN=a b", false, nil},
		{"nbsp-not-space", "CN=a\u00a0b", "CN=a b", false, nil},
		{"soft-hyphen-not-ignored", "CN=ab\u00adc", "CN=abc", false, nil},
		{"zwsp-not-ignored", "CN=ab\u200bc", "CN=abc", false, nil},

		// Simple case folding for non-ASCII letters.
		{"latin-ext", "CN=LUČIĆ", "CN=lučić", true, nil},
		{"greek-final-sigma", "CN=ΣΑΣ", "CN=σας", true, nil},
		{"capital-sharp-s", "CN=STRAẞE", "CN=straße", true, nil},
		{"angstrom-sign", "CN=\u212B", "CN=å", true, nil},
		// Folding never crosses the ASCII boundary (strings.EqualFold does).
		{"kelvin-vs-K", "CN=\u212Aelvin", "CN=Kelvin", false, nil},
		{"kelvin-vs-k", "CN=\u212Aelvin", "CN=kelvin", false, nil},
		{"kelvin-self", "CN=\u212Aelvin", "CN=\u212AELVIN", true, nil},
		{"long-s-vs-s", "CN=\u017Fam", "CN=sam", false, nil},
		{"long-s-vs-S", "CN=\u017Fam", "CN=Sam", false, nil},
		// No full folding, no special casing, no NFKC.
		{"sharp-s-vs-ss", "CN=straße", "CN=STRASSE", false, nil},
		{"dotted-capital-I", "CN=\u0130", "CN=i", false, nil},
		{"dotless-i", "CN=\u0131", "CN=I", false, nil},
		{"fullwidth", "CN=ＡＢＣ", "CN=ABC", false, nil},
		{"ligature", "CN=\ufb01le", "CN=file", false, nil},
		{"composed-vs-decomposed", "CN=\u00e9", "CN=e\u0301", false, nil},

		// caseIgnoreIA5Match: ASCII folding only.
		{"dc-case", "DC=EXAMPLE,DC=COM", "DC=example,DC=com", true, nil},
		{"email-case", "emailAddress=JSmith@Example.COM", "E=jsmith@example.com", true, nil},
		{"email-non-ascii-exact", "emailAddress=\u00c9@x", "emailAddress=\u00e9@x", false, nil},
		{"cn-non-ascii-folds", "CN=\u00c9", "CN=\u00e9", true, nil},

		// Unknown types compare exactly; tags do not matter.
		{"unknown-case", "1.2.3.4=Foo", "1.2.3.4=foo", false, nil},
		{"unknown-spaces", `1.2.3.4=foo\ `, "1.2.3.4=foo", false, nil},
		{"unknown-string-vs-hex", "1.2.3.4=foo", "1.2.3.4=#0c03666f6f", true, nil},
		{"unknown-printable-vs-utf8", "1.2.3.4=#1303666f6f", "1.2.3.4=#0c03666f6f", true, nil},
		{"name-vs-oid", "CN=x", "2.5.4.3=X", true, nil},

		// Values are compared decoded, whatever their ASN.1 string type.
		{"printable", "CN=#1303616263", "CN=abc", true, nil},
		{"bmp", "CN=#1e06006100620063", "CN=ABC", true, nil},
		{"t61", "CN=#1401e9", "CN=\u00c9", true, nil},
		{"universal", "CN=#1c0c000000610000006200000063", "CN=abc", true, nil},
	})
	// The reason for the ASCII rule: strings.EqualFold would say these match.
	if !strings.EqualFold("\u212Aelvin", "kelvin") || !strings.EqualFold("\u017Fam", "sam") {
		t.Error("strings.EqualFold changed; revisit the folding rule's documentation")
	}
}

func TestFoldNonASCII(t *testing.T) {
	tests := []struct{ in, want rune }{
		{'\u212A', '\u212A'}, // KELVIN SIGN: orbit {K, k, K}, only itself is non-ASCII
		{'\u017F', '\u017F'}, // LONG S: orbit {S, s, ſ}
		{'Σ', 'Σ'}, {'σ', 'Σ'}, {'ς', 'Σ'},
		{'ß', 'ß'}, {'ẞ', 'ß'},
		{'Å', 'Å'}, {'å', 'Å'}, {'\u212B', 'Å'},
		{'€', '€'},
	}
	for _, tc := range tests {
		if got := foldNonASCII(tc.in); got != tc.want {
			t.Errorf("foldNonASCII(%U) = %U, want %U", tc.in, got, tc.want)
		}
	}
}

// TestWithin: directoryName subtrees (RFC 5280 §4.2.1.10). Names are RFC 4514 strings (most
// specific RDN first), so a base is a suffix of the string and a prefix of the ASN.1 RDNs; ""
// is the zero Name.
func TestWithin(t *testing.T) {
	const billing = "CN=billing,OU=Payments,O=Example Corp,C=SE"
	tests := []struct {
		name, n, base string
		within        bool
	}{
		{"empty-base-contains-all", billing, "", true},
		{"empty-base-contains-empty", "", "", true},
		{"empty-name-in-nonempty-base", "", "C=SE", false},
		{"itself", billing, billing, true},
		{"one-rdn", billing, "C=SE", true},
		{"two-rdns", billing, "O=Example Corp,C=SE", true},
		{"three-rdns", billing, "OU=Payments,O=Example Corp,C=SE", true},
		{"base-longer", "O=Example Corp,C=SE", billing, false},
		{"other-value", billing, "O=Partner,C=SE", false},
		{"value-prefix-is-not-within", billing, "O=Example,C=SE", false},
		{"other-type-same-value", billing, "OU=Example Corp,C=SE", false},
		// The base names the most significant RDNs: the least significant ones do not count.
		{"least-significant-rdns", billing, "CN=billing,OU=Payments", false},
		{"reversed-base", billing, "C=SE,O=Example Corp", false},
		{"middle-rdns", billing, "OU=Payments,O=Example Corp", false},
		// caseIgnoreMatch and caseIgnoreIA5Match, as Equal.
		{"case-and-spaces", billing, "o=EXAMPLE   corp , c=se", true},
		{"leading-trailing-spaces", billing, `O=\ Example Corp\ ,C=SE`, true},
		{"ia5-case", "CN=a,DC=Example,DC=com", "DC=EXAMPLE,DC=COM", true},
		{"kelvin-is-not-k", "CN=a,O=Key", "O=\u212Aey", false},
		{"unknown-type-exact", "CN=a,1.2.3.4=Foo", "1.2.3.4=foo", false},
		// Multi-valued RDNs are sets: order inside does not matter, splitting does.
		{"multivalued-order", "CN=a,OU=Sales+O=Example,C=SE", "O=Example+OU=Sales,C=SE", true},
		{"multivalued-base-vs-split-name", "CN=a,OU=Sales,O=Example,C=SE", "OU=Sales+O=Example,C=SE", false},
		{"split-base-vs-multivalued-name", "CN=a,OU=Sales+O=Example,C=SE", "OU=Sales,O=Example,C=SE", false},
		{"multivalued-subset", "CN=a,OU=Sales+O=Example,C=SE", "O=Example,C=SE", false},
		{"multivalued-last-rdn", "CN=a+UID=1,O=Example", "UID=1+CN=A,O=Example", true},
	}
	parse := func(s string) Name {
		if s == "" {
			return Name{}
		}
		return mustParse(t, s)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, base := parse(tc.n), parse(tc.base)
			if got := n.Within(base); got != tc.within {
				t.Errorf("%q.Within(%q) = %v, want %v", tc.n, tc.base, got, tc.within)
			}
			if n.Within(base) && base.Within(n) != n.Equal(base) {
				t.Errorf("%q and %q are within each other but not Equal", tc.n, tc.base)
			}
		})
	}

	// Values are compared decoded: a PrintableString base contains a UTF8String name.
	o := asn1.ObjectIdentifier{2, 5, 4, 10}
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	base := mustFromDER(t, seq(set(atv(o, asn1.TagPrintableString, "Example"))))
	name := mustFromDER(t, seq(set(atv(o, asn1.TagUTF8String, "example")), set(atv(cn, asn1.TagUTF8String, "a"))))
	if !name.Within(base) {
		t.Errorf("%s is not within %s", name, base)
	}
}
