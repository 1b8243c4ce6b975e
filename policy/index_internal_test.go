package policy

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/certbind/certbind/testenv/pki"
)

// TestClientIndexFindsEveryMatch: for certificates with every name form, in other letter
// cases and spellings, the index's candidates are exactly the tls_client_auth clients whose
// matcher accepts the certificate, plus every self_signed_tls_client_auth client. A candidate
// missing would let identity miss a client (or an ambiguity); one too many would only cost time,
// but the index promises exactness.
func TestClientIndexFindsEveryMatch(t *testing.T) {
	regs := []struct{ field, value string }{
		{"tls_client_auth_subject_dn", "CN=billing,OU=Payments,O=Example Corp,C=SE"},
		{"tls_client_auth_subject_dn", "cn=BILLING, ou=payments,o=example  corp,c=se"},
		{"tls_client_auth_subject_dn", "CN=billing+OU=Payments,O=Example Corp,C=SE"},
		{"tls_client_auth_subject_dn", "OU=Payments,CN=billing,O=Example Corp,C=SE"},
		{"tls_client_auth_san_dns", "svc.example.org"},
		{"tls_client_auth_san_dns", "SVC.Example.ORG"},
		{"tls_client_auth_san_dns", "other.example.org"},
		{"tls_client_auth_san_uri", "spiffe://example.org/reports"},
		{"tls_client_auth_san_uri", "SPIFFE://EXAMPLE.org/reports"},
		{"tls_client_auth_san_uri", "spiffe://example.org/Reports"},
		{"tls_client_auth_san_uri", "spiffe://example.org/reports?x"},
		{"tls_client_auth_san_ip", "192.0.2.7"},
		{"tls_client_auth_san_ip", "::ffff:192.0.2.7"},
		{"tls_client_auth_san_ip", "2001:db8::7"},
		{"tls_client_auth_san_email", "ops@Example.org"},
		{"tls_client_auth_san_email", "Ops@example.org"},
	}
	var clients []*Client
	for i, r := range regs {
		m, err := newMatcher(r.field, r.value)
		if err != nil {
			t.Fatalf("%s %q: %v", r.field, r.value, err)
		}
		clients = append(clients, &Client{ID: fmt.Sprint("c", i), Method: MethodPKI, match: m})
	}
	clients = append(clients, &Client{ID: "pinned", Method: MethodSelfSigned})
	x := newClientIndex(clients)

	root := pki.NewRoot("Index Root")
	certs := []*pki.Cert{
		root.Leaf("a", pki.Subject("CN=Billing,OU=PAYMENTS,O=Example Corp,C=SE")),
		root.Leaf("b", pki.Subject("OU=Payments+CN=billing,O=Example Corp,C=SE")),
		root.Leaf("c", pki.DNS("Svc.Example.Org", "nope.example.org")),
		root.Leaf("d", pki.URI("spiffe://Example.ORG/reports", "spiffe://example.org/reports?x")),
		root.Leaf("e", pki.IP("192.0.2.7", "2001:db8::7")),
		root.Leaf("f", pki.Email("ops@EXAMPLE.ORG")),
		root.Leaf("g"),
	}
	for _, c := range certs {
		p, err := ParsePresented(c.DER(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []int32
		for i, cl := range clients {
			if cl.Method != MethodPKI || cl.match.matches(p) {
				want = append(want, int32(i))
			}
		}
		if got := x.candidates(p, nil); !slices.Equal(got, want) {
			t.Errorf("%s: candidates %v, want %v", p.Leaf.Subject, got, want)
		}
	}
}

// TestURIKey holds uriKeyOf to RFC 5280 section 7.4's comparison, written out part by part:
// scheme and host ignoring ASCII case, everything else exactly.
func TestURIKey(t *testing.T) {
	equal := func(a, b *url.URL) bool {
		return asciiEqualFold(a.Scheme, b.Scheme) && asciiEqualFold(a.Host, b.Host) &&
			a.Opaque == b.Opaque && a.User.String() == b.User.String() &&
			a.EscapedPath() == b.EscapedPath() && a.RawQuery == b.RawQuery &&
			a.ForceQuery == b.ForceQuery && a.EscapedFragment() == b.EscapedFragment()
	}
	raw := []string{
		"spiffe://example.org/reports", "SPIFFE://EXAMPLE.ORG/reports", "spiffe://example.org/Reports",
		"spiffe://example.org/reports?", "spiffe://example.org/reports?x", "spiffe://example.org/reports#x",
		"spiffe://example.org/reports%2F", "spiffe://example.org/reports/", "spiffe://u@example.org/reports",
		"spiffe://U@example.org/reports", "spiffe://example.org:8443/reports", "urn:example:a", "URN:example:a",
		"urn:Example:a", "https://example.org", "https://example.org/", "https://example.org/a%41",
		"https://example.org/%7e", "https://example.org/~", "https://[2001:db8::1]/", "https://[2001:DB8::1]/",
	}
	var us []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatalf("%q: %v", r, err)
		}
		us = append(us, u)
	}
	for i, a := range us {
		for j, b := range us {
			if got, want := uriKeyOf(a) == uriKeyOf(b), equal(a, b); got != want {
				t.Errorf("%q, %q: keys equal %v, RFC 5280 comparison %v", raw[i], raw[j], got, want)
			}
		}
	}
}
