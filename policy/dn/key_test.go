package dn

import "testing"

// Key is Equal's equivalence as a string: names equal under distinguishedNameMatch share a key,
// names that are not do not.
func TestKey(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		equal bool
	}{
		{"CN=billing,O=Example Corp,C=SE", "cn=BILLING,o=example  corp ,c=se", true},
		{"CN=a+OU=b,O=x", "OU=b+CN=a,O=x", true},               // multi-valued RDNs are sets
		{"CN=a,OU=b,O=x", "OU=b,CN=a,O=x", false},              // RDN order matters
		{"CN=a+OU=b,O=x", "CN=a,OU=b,O=x", false},              // one RDN of two is not two RDNs
		{"CN=ab,O=x", "CN=a,O=bx", false},                      // no run-together values
		{"CN=a b,O=x", "CN=ab,O=x", false},                     // an inner space is significant
		{"CN=\u212a,O=x", "CN=k,O=x", false},                   // KELVIN SIGN is not k
		{"CN=\u00c9,O=x", "CN=\u00e9,O=x", true},               // non-ASCII case folding
		{"emailAddress=A@X.org", "emailAddress=a@x.org", true}, // caseIgnoreIA5Match
		{"1.2.3.4=#0c0141,O=x", "1.2.3.4=#0c0161,O=x", false},  // unknown types match exactly
		{"CN=a,CN=a", "CN=a", false},
	} {
		a, err := Parse(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if a.Equal(b) != tc.equal {
			t.Fatalf("%q, %q: Equal %v, want %v", tc.a, tc.b, a.Equal(b), tc.equal)
		}
		if (a.Key() == b.Key()) != tc.equal {
			t.Errorf("%q, %q: keys equal %v, Equal %v", tc.a, tc.b, a.Key() == b.Key(), tc.equal)
		}
	}
}
