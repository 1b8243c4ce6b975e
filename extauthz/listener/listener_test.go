package listener

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"testing"
)

func TestAllowedCallers(t *testing.T) {
	c := ParseCallers(" spiffe://certbind.test/envoy , Envoy.Example.org,,")
	leaf := func(uri, dns string) tls.ConnectionState {
		cert := &x509.Certificate{}
		if uri != "" {
			u, err := url.Parse(uri)
			if err != nil {
				t.Fatal(err)
			}
			cert.URIs = append(cert.URIs, u)
		}
		if dns != "" {
			cert.DNSNames = append(cert.DNSNames, dns)
		}
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	}
	for _, tc := range []struct {
		name, uri, dns string
		ok             bool
	}{
		{"URI", "spiffe://certbind.test/envoy", "", true},
		{"URI in another case", "spiffe://certbind.test/ENVOY", "", false},
		{"DNS in another case", "", "envoy.example.ORG", true},
		{"the URI as a DNS name", "", "spiffe://certbind.test/envoy", false},
		{"the DNS name as a URI", "spiffe://envoy.example.org", "", false},
		{"neither", "spiffe://certbind.test/other", "other.example.org", false},
	} {
		if err := c.Verify(leaf(tc.uri, tc.dns)); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want allowed=%v", tc.name, err, tc.ok)
		}
	}
	if err := c.Verify(tls.ConnectionState{}); err == nil {
		t.Error("a caller without a certificate was allowed")
	}
}
