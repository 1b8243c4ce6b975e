package dn

import (
	"testing"
)

// TestRegisteredAgainstCertificates: vectors D.7, registered
// tls_client_auth_subject_dn against the C.* certificates, case_ignore
// column. A row with err cannot be registered at all.
func TestRegisteredAgainstCertificates(t *testing.T) {
	tests := []struct {
		registered string
		cert       string
		match      bool
		err        error
	}{
		{"CN=client-1,OU=Eng,O=Example Corp,C=US", "01-simple.pem", true, nil},
		{"cn=client-1, ou=Eng, o=Example Corp, c=US", "01-simple.pem", true, nil},
		{"CN=CLIENT-1,OU=Eng,O=Example Corp,C=US", "01-simple.pem", true, nil},
		{"C=US,O=Example Corp,OU=Eng,CN=client-1", "01-simple.pem", false, nil},
		{"CN=client-1,OU=Eng,O=Example Corp", "01-simple.pem", false, nil},
		{`CN=back\\slash,OU=a\+b \"q\" \<x\>\;y,O=Sue\, Grabbit and Runn,C=GB`, "02-specials.pem", true, nil},
		{`CN=\#hash,OU=trail\ ,O=\ lead`, "03-hash-spaces.pem", true, nil},
		{"OU=Sales+CN=J. Smith,O=Widget Inc.,C=US", "04-multivalued.pem", true, nil},
		{"CN=J. Smith+OU=Sales,O=Widget Inc.,C=US", "04-multivalued.pem", true, nil},
		{"CN=J. Smith,OU=Sales,O=Widget Inc.,C=US", "04-multivalued.pem", false, nil},
		{"emailAddress=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{"1.2.840.113549.1.9.1=#16126a736d697468406578616d706c652e636f6d,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{"1.2.840.113549.1.9.1=#0c126a736d697468406578616d706c652e636f6d,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{"E=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{`CN=Lu\C4\8Di\C4\87,C=HR`, "06-utf8.pem", true, nil},
		{"CN=Lučić,C=HR", "06-utf8.pem", true, nil},
		{"CN=svc,OU=a-first,OU=b-second,O=Example,C=US", "07-repeated-ou.pem", true, nil},
		// Go's pkix.Name.String form: D.7 says "no"; it does not even parse.
		{"CN=svc,OU=b-second+OU=a-first,O=Example,C=US", "07-repeated-ou.pem", false, ErrSyntax},
		{"C=US,O=Example,CN=reversed", "08-cn-first.pem", true, nil},
		{"CN=reversed,O=Example,C=US", "08-cn-first.pem", false, nil},
		{"CN=0015800001HQQrZAAX,serialNumber=1234,organizationIdentifier=PSDGB-OB-Unknown0015800001HQQrZAAX,O=OpenBanking,C=GB", "09-orgid-serial.pem", true, nil},
		{"CN=0015800001HQQrZAAX,2.5.4.5=#130431323334,2.5.4.97=#0c2250534447422d4f422d556e6b6e6f776e30303135383030303031485151725a414158,O=OpenBanking,C=GB", "09-orgid-serial.pem", true, nil},
		{"CN=Client Two,O=example corp,C=US", "10-case-printable.pem", true, nil},
		{`CN=client-1\00,OU=Eng,O=Example Corp,C=US`, "01-simple.pem", false, ErrNUL},

		// Further rows.
		{"OU=trail,O=lead,CN=#hash", "03-hash-spaces.pem", false, ErrSyntax},              // '#' must be escaped
		{`CN=\#hash,OU=trail,O=lead`, "03-hash-spaces.pem", true, nil},                    // edge spaces are insignificant
		{`CN=\#HASH,OU=trail   ,O=  lead`, "03-hash-spaces.pem", true, nil},               // unescaped edge spaces are syntax
		{"CN=J. Smith,O=Widget Inc.,C=US", "04-multivalued.pem", false, nil},              // half of a multi-valued RDN
		{"CN=john smith,UID=JSMITH,DC=EXAMPLE,DC=COM", "05-email-dc-uid.pem", false, nil}, // RDN missing
		{"emailAddress=JSMITH@EXAMPLE.COM,CN=john smith,UID=JSMITH,DC=EXAMPLE,DC=COM", "05-email-dc-uid.pem", true, nil},
		{"CN=LUČIĆ,C=hr", "06-utf8.pem", true, nil},
		{"CN=Lucic,C=HR", "06-utf8.pem", false, nil},
		{"CN=svc,OU=b-second,OU=a-first,O=Example,C=US", "07-repeated-ou.pem", false, nil},
		{"CN=svc,OU=a-first,O=Example,C=US", "07-repeated-ou.pem", false, nil},
		{"CN=ClientTwo,O=example corp,C=US", "10-case-printable.pem", false, nil},
		{"CN=san-client", "11-sans.pem", true, nil},
		{"CN=san-client,O=Example", "11-sans.pem", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.cert+"/"+tc.registered, func(t *testing.T) {
			subject := mustFromDER(t, loadCert(t, tc.cert).RawSubject)
			registered, err := Parse(tc.registered)
			if tc.err != nil {
				if sentinelOf(err) != tc.err {
					t.Fatalf("Parse(%q) error = %v, want %v", tc.registered, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.registered, err)
			}
			if got := registered.Equal(subject); got != tc.match {
				t.Errorf("Parse(%q).Equal(subject %q) = %v, want %v", tc.registered, subject, got, tc.match)
			}
			if got := subject.Equal(registered); got != tc.match {
				t.Errorf("subject.Equal(registered) = %v, want %v (not symmetric)", got, tc.match)
			}
		})
	}
}

// TestCertificateRoundTrip: for every C.* certificate, String renders the
// subject as OpenSSL -nameopt RFC2253,-esc_msb and Java getName() do (they
// differ from each other on C.04, C.05 and C.09, noted), and
// Parse(FromDER(raw).String()) is Equal to FromDER(raw).
func TestCertificateRoundTrip(t *testing.T) {
	want := map[string]string{
		"01-simple.pem":      "CN=client-1,OU=Eng,O=Example Corp,C=US",
		"02-specials.pem":    `CN=back\\slash,OU=a\+b \"q\" \<x\>\;y,O=Sue\, Grabbit and Runn,C=GB`,
		"03-hash-spaces.pem": `CN=\#hash,OU=trail\ ,O=\ lead`,
		// Encoded order inside the RDN, as Java; OpenSSL writes CN first.
		"04-multivalued.pem": "OU=Sales+CN=J. Smith,O=Widget Inc.,C=US",
		// Type names as OpenSSL; Java writes the email type as an OID.
		"05-email-dc-uid.pem": "emailAddress=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com",
		"06-utf8.pem":         "CN=Lučić,C=HR",
		"07-repeated-ou.pem":  "CN=svc,OU=a-first,OU=b-second,O=Example,C=US",
		"08-cn-first.pem":     "C=US,O=Example,CN=reversed",
		// Type names as OpenSSL; Java writes both as OIDs with #hex.
		"09-orgid-serial.pem":   "CN=0015800001HQQrZAAX,serialNumber=1234,organizationIdentifier=PSDGB-OB-Unknown0015800001HQQrZAAX,O=OpenBanking,C=GB",
		"10-case-printable.pem": "CN=Client  Two,O=EXAMPLE corp,C=us",
		"11-sans.pem":           "CN=san-client",
	}
	for _, f := range certFiles {
		t.Run(f, func(t *testing.T) {
			n := mustFromDER(t, loadCert(t, f).RawSubject)
			s := n.String()
			if s != want[f] {
				t.Errorf("String() = %q, want %q", s, want[f])
			}
			back := mustParse(t, s)
			if !back.Equal(n) || !n.Equal(back) {
				t.Errorf("Parse(%q) is not Equal to the subject", s)
			}
			if back.String() != s {
				t.Errorf("Parse(%q).String() = %q", s, back.String())
			}
		})
	}
}

// TestOtherRenderings: subject strings other tools print for the C.*
// certificates (vectors C, "Renderings"). Go's pkix.Name.String() reorders
// attributes and merges repeated ones into one RDN: it is not the subject
// and must never be compared with, or registered as, one.
func TestOtherRenderings(t *testing.T) {
	tests := []struct {
		tool, rendering, cert string
		match                 bool
		err                   error
	}{
		{"openssl", "CN=J. Smith+OU=Sales,O=Widget Inc.,C=US", "04-multivalued.pem", true, nil},
		{"openssl", `CN=Lu\C4\8Di\C4\87,C=HR`, "06-utf8.pem", true, nil},
		{"java", "1.2.840.113549.1.9.1=#16126a736d697468406578616d706c652e636f6d,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{"java+keycloak", "EMAILADDRESS=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{"java+keycloak", "CN=0015800001HQQrZAAX,SERIALNUMBER=1234,2.5.4.97=#0c2250534447422d4f422d556e6b6e6f776e30303135383030303031485151725a414158,O=OpenBanking,C=GB", "09-orgid-serial.pem", true, nil},
		{"java-canonical", "cn=j. smith+ou=sales,o=widget inc.,c=us", "04-multivalued.pem", true, nil},
		{"java-canonical", "1.2.840.113549.1.9.1=#16126a736d697468406578616d706c652e636f6d,cn=john smith,uid=jsmith,dc=#16076578616d706c65,dc=#1603636f6d", "05-email-dc-uid.pem", true, nil},
		{"java-canonical", `cn=\#hash,ou=trail,o=lead`, "03-hash-spaces.pem", true, nil},
		{"java-canonical", "cn=client two,o=example corp,c=us", "10-case-printable.pem", true, nil},
		// Envoy XFCC Subject (BoringSSL's table lacks organizationIdentifier; upper-case hex).
		{"envoy-boringssl", "CN=0015800001HQQrZAAX,serialNumber=1234,2.5.4.97=#0C2250534447422D4F422D556E6B6E6F776E30303135383030303031485151725A414158,O=OpenBanking,C=GB", "09-orgid-serial.pem", true, nil},
		{"envoy-boringssl", `CN=Lu\C4\8Di\C4\87,C=HR`, "06-utf8.pem", true, nil},
		{"python", "CN=0015800001HQQrZAAX,2.5.4.5=1234,2.5.4.97=PSDGB-OB-Unknown0015800001HQQrZAAX,O=OpenBanking,C=GB", "09-orgid-serial.pem", true, nil},
		{"python", "1.2.840.113549.1.9.1=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com", "05-email-dc-uid.pem", true, nil},
		{"go-rdnsequence", "1.2.840.113549.1.9.1=#0c126a736d697468406578616d706c652e636f6d,CN=John Smith,0.9.2342.19200300.100.1.1=#13066a736d697468,0.9.2342.19200300.100.1.25=#13076578616d706c65,0.9.2342.19200300.100.1.25=#1303636f6d", "05-email-dc-uid.pem", true, nil},

		// Go pkix.Name.String(): right only when the subject is already in
		// its canonical order with one attribute per RDN.
		{"go-pkix-name", "CN=client-1,OU=Eng,O=Example Corp,C=US", "01-simple.pem", true, nil},
		{"go-pkix-name", "CN=J. Smith,OU=Sales,O=Widget Inc.,C=US", "04-multivalued.pem", false, nil},
		{"go-pkix-name", "CN=John Smith,1.2.840.113549.1.9.1=#0c126a736d697468406578616d706c652e636f6d,0.9.2342.19200300.100.1.1=#13066a736d697468,0.9.2342.19200300.100.1.25=#13076578616d706c65,0.9.2342.19200300.100.1.25=#1303636f6d", "05-email-dc-uid.pem", false, nil},
		{"go-pkix-name", "CN=svc,OU=b-second+OU=a-first,O=Example,C=US", "07-repeated-ou.pem", false, ErrSyntax},
		{"go-pkix-name", "CN=reversed,O=Example,C=US", "08-cn-first.pem", false, nil},
		{"go-pkix-name", "SERIALNUMBER=1234,CN=0015800001HQQrZAAX,O=OpenBanking,C=GB,2.5.4.97=#132250534447422d4f422d556e6b6e6f776e30303135383030303031485151725a414158", "09-orgid-serial.pem", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.tool+"/"+tc.cert, func(t *testing.T) {
			cert := loadCert(t, tc.cert)
			subject := mustFromDER(t, cert.RawSubject)
			n, err := Parse(tc.rendering)
			if tc.err != nil {
				if sentinelOf(err) != tc.err {
					t.Fatalf("Parse(%q) error = %v, want %v", tc.rendering, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.rendering, err)
			}
			if got := n.Equal(subject); got != tc.match {
				t.Errorf("Parse(%q).Equal(subject %q) = %v, want %v", tc.rendering, subject, got, tc.match)
			}
			if tc.tool == "go-pkix-name" && cert.Subject.String() != tc.rendering {
				t.Errorf("cert.Subject.String() = %q, the vector says %q", cert.Subject.String(), tc.rendering)
			}
		})
	}
}
