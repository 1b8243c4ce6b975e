package envoyxfcc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"

	"github.com/certbind/certbind/extauthz/xfcc"
)

// unescapeQuoted undoes only \" and \\, as xfcc.Parse does inside quotes.
var unescapeQuoted = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace

// FuzzFormatSubject: no panic; output is printable ASCII that survives XFCC quoting; whatever
// BoringSSL's rules accept, OpenSSL's accept too.
func FuzzFormatSubject(f *testing.F) {
	for _, file := range []string{"clientcert.pem", "servercert.pem", "cacert.pem"} {
		f.Add(vectorCert(f, file).RawSubject)
	}
	for _, name := range []string{`a"b\c,d;e+f<g>h=i`, "#lead and trail ", `\`, ""} {
		raw, err := asn1.Marshal(pkix.Name{CommonName: name}.ToRDNSequence())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add(rawName(f, cn(12, "Lučić"), []attr{{oid: oidOrgID, tag: 12, value: "x"}, {oid: oidCN, tag: 30, value: bmp('é', '"')}}))
	f.Add(rawName(f, cn(12, "#"), nil, []attr{{oid: asn1.ObjectIdentifier{1, 2, 3}, tag: 30, value: "\x00\""}}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		envoy, errEnvoy := FormatSubject(raw)
		openSSL, errOpenSSL := formatSubjectOpenSSL(raw)
		if errEnvoy == nil && errOpenSSL != nil {
			t.Fatalf("OpenSSL rules reject what BoringSSL rules accept: %v", errOpenSSL)
		}
		for _, err := range []error{errEnvoy, errOpenSSL} {
			if err != nil && !errors.Is(err, ErrBadSubject) {
				t.Fatalf("error %v is not ErrBadSubject", err)
			}
		}
		for _, s := range []string{envoy, openSSL} {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] > 0x7e {
					t.Fatalf("unescaped byte %#x in %q", s[i], s)
				}
			}
			if len(s)+len(`Subject=""`) > xfcc.DefaultLimits.MaxHeaderBytes {
				continue
			}
			elems, err := xfcc.Parse(`Subject="`+s+`"`, xfcc.Limits{})
			if err != nil {
				t.Fatalf("Parse(Subject=%q): %v", s, err)
			}
			if len(elems) != 1 || elems[0].Subject != unescapeQuoted(s) {
				t.Fatalf("Subject %q did not survive quoting", s)
			}
		}
	})
}
