package envoyxfcc

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/certbind/certbind/extauthz/xfcc"
	"github.com/certbind/certbind/testenv/pki"
)

// TestBuildEnvoyIntegration reproduces every header of Envoy's integration tests (vectors B)
// from the certificates Envoy used.
func TestBuildEnvoyIntegration(t *testing.T) {
	server := vectorCert(t, "servercert.pem")
	client := vectorCert(t, "clientcert.pem")
	for _, c := range integrationCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			element := Build(server, []*x509.Certificate{client}, c.Details)
			got, present := Mutate(c.In, c.InPresent, c.MTLS, c.Mode, element)
			if present != c.OutPresent || got != c.Out {
				t.Errorf("Mutate = %q (present %v)\nwant     %q (present %v)", got, present, c.Out, c.OutPresent)
			}
		})
	}
}

// TestBuildEveryDetail reproduces DERIVED N.2 (SANITIZE_SET with subject, cert, chain, uri,
// dns) byte for byte.
func TestBuildEveryDetail(t *testing.T) {
	server := vectorCert(t, "servercert.pem")
	client := vectorCert(t, "clientcert.pem")
	want := readVector(t, "n2-all-details.xfcc")
	element := Build(server, []*x509.Certificate{client}, Details{Subject: true, Cert: true, Chain: true, URI: true, DNS: true})
	got, present := Mutate(`By=spiffe://lyft.com/frontend;Hash=123456`, true, true, SanitizeSet, element)
	if !present || got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestEncodePEMKeycloak re-encodes the certificates of Keycloak's genuine Envoy headers
// (vectors F.1) and expects Envoy's own bytes.
func TestEncodePEMKeycloak(t *testing.T) {
	for _, file := range []string{"keycloak-cert.xfcc", "keycloak-chain.xfcc", "keycloak-cert-and-chain.xfcc"} {
		header := readVector(t, file)
		elems, err := xfcc.Parse(header, xfcc.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		e := elems[0]
		if e.Cert != nil {
			if want := `;Cert="` + EncodePEM([]byte(pemOf(e.Cert))) + `"`; !strings.Contains(header, want) {
				t.Errorf("%s: re-encoded Cert not found in the header", file)
			}
		}
		if e.Chain != nil {
			var sb strings.Builder
			for _, der := range e.Chain {
				sb.WriteString(EncodePEM([]byte(pemOf(der))))
			}
			if want := `;Chain="` + sb.String() + `"`; !strings.HasSuffix(header, want) {
				t.Errorf("%s: re-encoded Chain not found in the header", file)
			}
		}
	}
}

func TestEncodePEM(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	got := EncodePEM(all)
	var want strings.Builder
	for _, c := range all {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', strings.IndexByte("*-._", c) >= 0:
			want.WriteByte(c)
		default:
			want.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	if got != want.String() {
		t.Errorf("EncodePEM(all bytes) = %q\nwant %q", got, want.String())
	}
	// On PEM text it equals Envoy's StrReplaceAll of \n, space, +, /, = (connection_info_impl_base.cc).
	pemText := pemOf(vectorCert(t, "clientcert.pem").Raw)
	envoy := strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(pemText)
	if EncodePEM([]byte(pemText)) != envoy {
		t.Error("EncodePEM differs from Envoy's replacement on PEM text")
	}
}

// TestMutate follows Envoy's unit tests (vectors A) and the edge cases of
// mutateXfccRequestHeader and HeaderMapImpl::appendToHeader.
func TestMutate(t *testing.T) {
	const el = `By=test://foo.com/be;Hash=abcdefg;URI=test://foo.com/fe`
	tests := []struct {
		name        string
		in          string
		inPresent   bool
		mtls        bool
		mode        ForwardMode
		element     string
		want        string
		wantPresent bool
	}{
		{"A.1 sanitize", "By=test;URI=abc;DNS=example.com", true, true, Sanitize, el, "", false},
		{"A.2 forward only", "By=test://foo.com/fe;URI=test://bar.com/be;DNS=example.com", true, true, ForwardOnly, el, "By=test://foo.com/fe;URI=test://bar.com/be;DNS=example.com", true},
		{"A.3 append, no incoming", "", false, true, AppendForward, el, el, true},
		{"A.4 append", "By=test://foo.com/fe;URI=test://bar.com/be", true, true, AppendForward, el, "By=test://foo.com/fe;URI=test://bar.com/be," + el, true},
		{"A.6 sanitize set", "By=test://foo.com/fe;URI=test://bar.com/be", true, true, SanitizeSet, el, el, true},
		{"A.8 forward only without client cert", "By=test;URI=abc", true, false, ForwardOnly, el, "", false},
		{"A.9 always forward only without client cert", "By=test://foo.com/fe;URI=test://bar.com/be", true, false, AlwaysForwardOnly, el, "By=test://foo.com/fe;URI=test://bar.com/be", true},
		{"A.11 always forward only, absent", "", false, false, AlwaysForwardOnly, el, "", false},
		{"forward only, absent", "", false, true, ForwardOnly, el, "", false},
		{"append to empty value", "", true, true, AppendForward, el, el, true},
		{"append without mTLS", "By=x", true, false, AppendForward, el, "", false},
		{"sanitize set without mTLS", "By=x", true, false, SanitizeSet, el, "", false},
		{"append empty element", "", false, true, AppendForward, "", "", true},
		{"append empty element to value", "By=x", true, true, AppendForward, "", "By=x", true},
		{"value ignored when absent", "By=x", false, true, AppendForward, el, el, true},
		{"unknown mode sanitizes", "By=x", true, true, ForwardMode("sanitize_set"), el, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present := Mutate(tt.in, tt.inPresent, tt.mtls, tt.mode, tt.element)
			if got != tt.want || present != tt.wantPresent {
				t.Errorf("Mutate = %q, %v; want %q, %v", got, present, tt.want, tt.wantPresent)
			}
		})
	}
}

// TestBuildShapes covers what the Envoy vectors do not: no proxy URI SAN, a client without
// SANs or subject, a chain, raw SAN bytes.
func TestBuildShapes(t *testing.T) {
	ca := pki.NewRoot("ca")
	bare := ca.Leaf("").Cert
	proxy := pki.SelfSigned("proxy", pki.RawSANs([]string{"spiffe://mesh/proxy"}, nil)).Cert
	odd := ca.Leaf("odd", pki.RawSANs([]string{"spiffe://x/a b", "urn:x"}, []string{"A.example", "b.example"})).Cert

	tests := []struct {
		name  string
		proxy *x509.Certificate
		chain []*x509.Certificate
		d     Details
		want  string
	}{
		{"no proxy SAN, empty subject, no SANs", nil, []*x509.Certificate{bare}, Details{Subject: true, URI: true, DNS: true},
			hashPair(bare) + `;Subject="";URI=`},
		{"By per proxy URI SAN", proxy, []*x509.Certificate{bare}, Details{},
			"By=spiffe://mesh/proxy;" + hashPair(bare)},
		{"raw SANs in certificate order", nil, []*x509.Certificate{odd}, Details{URI: true, DNS: true},
			hashPair(odd) + ";URI=spiffe://x/a b;URI=urn:x;DNS=A.example;DNS=b.example"},
		{"chain as sent", nil, []*x509.Certificate{odd, ca.Cert}, Details{Cert: true, Chain: true},
			hashPair(odd) + `;Cert="` + certValue(odd) + `";Chain="` + certValue(odd) + certValue(ca.Cert) + `"`},
		{"no peer certificate", proxy, nil, Details{Subject: true, Cert: true, Chain: true, URI: true},
			`By=spiffe://mesh/proxy;Subject="";URI=`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Build(tt.proxy, tt.chain, tt.d); got != tt.want {
				t.Errorf("Build =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if odd.URIs[0].String() == "spiffe://x/a b" {
		t.Error("crypto/x509 now keeps URI bytes; the raw-SAN case no longer tests anything")
	}
}
