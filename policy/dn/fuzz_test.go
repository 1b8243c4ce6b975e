package dn

import (
	"testing"
)

// parseSeeds are RFC 4514 strings from the vectors, good and bad.
var parseSeeds = []string{
	"UID=jsmith,DC=example,DC=net",
	"OU=Sales+CN=J. Smith,DC=example,DC=net",
	`CN=James \"Jim\" Smith\, III,DC=example,DC=net`,
	`CN=Before\0dAfter,DC=example,DC=net`,
	"1.3.6.1.4.1.1466.0=#04024869",
	`CN=Lu\C4\8Di\C4\87`,
	`CN=L. Eagle,O=Sue\, Grabbit and Runn,C=GB`,
	"CN=client-1, OU=Eng, O=Example Corp, C=US",
	"CN=a;O=b",
	`CN="quoted, value",O=X`,
	"/C=US/O=Example Corp/OU=Eng/CN=client-1",
	"emailAddress=jsmith@example.com,CN=John Smith,UID=jsmith,DC=example,DC=com",
	"1.2.840.113549.1.9.1=#16126a736d697468406578616d706c652e636f6d,CN=John Smith,UID=jsmith,DC=example,DC=com",
	"CN=Client  Two,O=EXAMPLE corp,C=us",
	`CN=back\\slash,OU=a\+b \"q\" \<x\>\;y,O=Sue\, Grabbit and Runn,C=GB`,
	`CN=\#hash,OU=trail\ ,O=\ lead`,
	"CN=svc,OU=b-second+OU=a-first,O=Example,C=US",
	"CN=0015800001HQQrZAAX,2.5.4.5=#130431323334,2.5.4.97=#0c2250534447422d4f422d556e6b6e6f776e30303135383030303031485151725a414158,O=OpenBanking,C=GB",
	`CN=client-1\00,OU=Eng,O=Example Corp,C=US`,
	"CN=test\t,O=Example",
	"CN=test\u00a0,O=Example",
	"cn = myclient, ou = My Dept, o = My Company",
	"CN=\u212Aelvin",
	"CN=ΣΑΣ",
	"CN=#1e0600610062010d",
	"CN=#1c080000006100010000",
	"1.2.3.4=foo",
	"",
}

// FuzzParse checks, for two inputs: no panic; errors wrap exactly one
// sentinel; a parsed Name renders to a string that parses to an Equal Name
// with the same rendering; Equal is reflexive and symmetric, agrees with Key, and is Within
// both ways.
func FuzzParse(f *testing.F) {
	for i, s := range parseSeeds {
		f.Add(s, parseSeeds[(i+1)%len(parseSeeds)])
		f.Add(s, s)
	}
	f.Add("CN=Client  Two,O=EXAMPLE corp,C=us", "CN=client two,O=example corp,C=US")
	f.Add("OU=Sales+CN=J. Smith,O=W", "CN=J. Smith+OU=Sales,O=W")
	f.Fuzz(func(t *testing.T, a, b string) {
		na, okA := checkParse(t, a)
		nb, okB := checkParse(t, b)
		if okA && okB && na.Equal(nb) != nb.Equal(na) {
			t.Fatalf("Equal not symmetric: %q vs %q", a, b)
		}
		if okA && okB && na.Equal(nb) != (na.Key() == nb.Key()) {
			t.Fatalf("Equal(%q, %q) is %v, their keys say otherwise", a, b, na.Equal(nb))
		}
		if okA && okB && na.Equal(nb) != (na.Within(nb) && nb.Within(na)) {
			t.Fatalf("Equal(%q, %q) is not mutual Within", a, b)
		}
	})
}

func checkParse(t *testing.T, s string) (Name, bool) {
	n, err := Parse(s)
	if err != nil {
		if sentinelOf(err) == nil {
			t.Fatalf("Parse(%q) error %q wraps no single sentinel", s, err)
		}
		return Name{}, false
	}
	if !registrable(n) {
		t.Fatalf("Parse(%q) returned %v, which Parse must reject", s, n.RDNs())
	}
	if !n.Equal(n) {
		t.Fatalf("Parse(%q) not Equal to itself", s)
	}
	r := n.String()
	back, err := Parse(r)
	if err != nil {
		t.Fatalf("Parse(%q) rendered %q, which does not parse: %v", s, r, err)
	}
	if !back.Equal(n) || !n.Equal(back) {
		t.Fatalf("Parse(%q) rendered %q, which parses to a different name", s, r)
	}
	if back.String() != r {
		t.Fatalf("rendering not stable: %q -> %q -> %q", s, r, back.String())
	}
	return n, true
}

// FuzzFromDER checks: no panic; errors wrap ErrNUL or ErrEncoding; a parsed
// Name is Equal to itself; its rendering parses to an Equal Name unless the
// Name cannot be registered (no RDNs, an empty value, a type repeated in
// one RDN), in which case Parse rejects the rendering.
func FuzzFromDER(f *testing.F) {
	for _, name := range certFiles {
		f.Add(loadCert(f, name).RawSubject)
	}
	f.Add(seq())
	f.Add(seq(set(atv(oidOU, 0x0c, "a"), atv(oidOU, 0x0c, "b"))))
	f.Add(seq(set(atv(oidCN, 0x1e, "\x00a\x01\x0d"))))
	f.Add(seq(set(atv(oidCN, 0x1c, "\x00\x00\x00a"))))
	f.Add(seq(set(atv(oidCN, 0x14, "caf\xe9"))))
	f.Add(seq(set(atv(oidCN, 0x0c, "admin\x00"))))
	f.Add(seq(set(atv(oidCN, 0x04, "Hi"))))
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := FromDER(raw)
		if err != nil {
			if s := sentinelOf(err); s != ErrNUL && s != ErrEncoding {
				t.Fatalf("FromDER(%x) error %q wraps %v", raw, err, s)
			}
			return
		}
		if !n.Equal(n) {
			t.Fatalf("FromDER(%x) not Equal to itself", raw)
		}
		r := n.String()
		back, err := Parse(r)
		if !registrable(n) {
			if s := sentinelOf(err); s != ErrEmpty && s != ErrSyntax {
				t.Fatalf("FromDER(%x) = %q cannot be registered, but Parse gave %v", raw, r, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("FromDER(%x) rendered %q, which does not parse: %v", raw, r, err)
		}
		if !back.Equal(n) || !n.Equal(back) {
			t.Fatalf("FromDER(%x) rendered %q, which parses to a different name", raw, r)
		}
		// A registration (Parse) matches a certificate's subject (FromDER) by Key.
		if back.Key() != n.Key() {
			t.Fatalf("FromDER(%x) and its rendering %q are Equal, their keys differ", raw, r)
		}
	})
}

// BenchmarkEqual is the request hot path: parse the presented certificate's
// subject and compare it with a registered DN parsed at load time.
func BenchmarkEqual(b *testing.B) {
	cases := []struct {
		name, cert, registered string
	}{
		{"simple", "01-simple.pem", "CN=client-1,OU=Eng,O=Example Corp,C=US"},
		{"case-and-spaces", "10-case-printable.pem", "CN=client two,O=example corp,C=US"},
		{"multivalued", "04-multivalued.pem", "CN=J. Smith+OU=Sales,O=Widget Inc.,C=US"},
		{"orgid", "09-orgid-serial.pem", "CN=0015800001HQQrZAAX,serialNumber=1234,organizationIdentifier=PSDGB-OB-Unknown0015800001HQQrZAAX,O=OpenBanking,C=GB"},
		{"utf8-fold", "06-utf8.pem", "CN=LUČIĆ,C=HR"},
	}
	for _, c := range cases {
		raw := loadCert(b, c.cert).RawSubject
		registered := mustParse(b, c.registered)
		b.Run("FromDER+Equal/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n, err := FromDER(raw)
				if err != nil || !registered.Equal(n) {
					b.Fatal("no match")
				}
			}
		})
		subject := mustFromDER(b, raw)
		b.Run("Equal/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !registered.Equal(subject) {
					b.Fatal("no match")
				}
			}
		})
	}
}
