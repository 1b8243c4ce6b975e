package xfcc

import (
	"bytes"
	"crypto/x509"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type integrationCase struct {
	name                  string
	mode                  ForwardMode
	details               Details
	mtls                  bool
	in, out               string
	inPresent, outPresent bool
}

// integrationCases reads testdata/envoy-integration.txt (vectors B).
func integrationCases(tb testing.TB) []integrationCase {
	tb.Helper()
	var cases []integrationCase
	for _, line := range strings.Split(readFile(tb, "envoy-integration.txt"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch word, rest, _ := strings.Cut(line, " "); word {
		case "case":
			f := strings.Fields(rest)
			if len(f) != 4 {
				tb.Fatalf("bad case line %q", line)
			}
			c := integrationCase{name: f[0], mode: ForwardMode(f[1]), mtls: f[3] == "mtls"}
			for _, d := range strings.Split(f[2], ",") {
				switch d {
				case "subject":
					c.details.Subject = true
				case "uri":
					c.details.URI = true
				case "dns":
					c.details.DNS = true
				case "-":
				default:
					tb.Fatalf("unknown detail %q", d)
				}
			}
			cases = append(cases, c)
		case "in":
			cases[len(cases)-1].in, cases[len(cases)-1].inPresent = rest, true
		case "out":
			cases[len(cases)-1].out, cases[len(cases)-1].outPresent = rest, true
		case "in-absent", "out-absent":
		default:
			tb.Fatalf("bad line %q", line)
		}
	}
	if len(cases) != 22 {
		tb.Fatalf("read %d cases, want 22", len(cases))
	}
	return cases
}

// TestBuildEnvoyIntegration reproduces every header of Envoy's integration tests (vectors B)
// from the certificates Envoy used.
func TestBuildEnvoyIntegration(t *testing.T) {
	server := loadCert(t, "servercert.pem")
	client := loadCert(t, "clientcert.pem")
	for _, c := range integrationCases(t) {
		t.Run(c.name, func(t *testing.T) {
			element := Build(server, []*x509.Certificate{client}, c.details)
			got, present := Mutate(c.in, c.inPresent, c.mtls, c.mode, element)
			if present != c.outPresent || got != c.out {
				t.Errorf("Mutate = %q (present %v)\nwant     %q (present %v)", got, present, c.out, c.outPresent)
			}
		})
	}
}

// TestBuildEveryDetail reproduces DERIVED N.2 (SANITIZE_SET with subject, cert, chain, uri,
// dns) byte for byte.
func TestBuildEveryDetail(t *testing.T) {
	server := loadCert(t, "servercert.pem")
	client := loadCert(t, "clientcert.pem")
	want := readFile(t, "n2-all-details.xfcc")
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
		header := readFile(t, file)
		elems, err := Parse(header, Limits{})
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
	pemText := pemOf(loadCert(t, "clientcert.pem").Raw)
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
	ca := newCert(t, certOpts{cn: "ca", ca: true}, nil)
	bare := newCert(t, certOpts{}, ca)
	proxy := newCert(t, certOpts{cn: "proxy", uris: []string{"spiffe://mesh/proxy"}}, nil)
	odd := newCert(t, certOpts{cn: "odd", uris: []string{"spiffe://x/a b", "urn:x"}, dns: []string{"A.example", "b.example"}}, ca)
	hash := func(c *x509.Certificate) string { return "Hash=" + hexOf(sha256Of(c.Raw)) }

	tests := []struct {
		name  string
		proxy *x509.Certificate
		chain []*x509.Certificate
		d     Details
		want  string
	}{
		{"no proxy SAN, empty subject, no SANs", nil, []*x509.Certificate{bare}, Details{Subject: true, URI: true, DNS: true},
			hash(bare) + `;Subject="";URI=`},
		{"By per proxy URI SAN", proxy, []*x509.Certificate{bare}, Details{},
			"By=spiffe://mesh/proxy;" + hash(bare)},
		{"raw SANs in certificate order", nil, []*x509.Certificate{odd}, Details{URI: true, DNS: true},
			hash(odd) + ";URI=spiffe://x/a b;URI=urn:x;DNS=A.example;DNS=b.example"},
		{"chain as sent", nil, []*x509.Certificate{odd, ca}, Details{Cert: true, Chain: true},
			hash(odd) + `;Cert="` + certValue(odd) + `";Chain="` + certValue(odd) + certValue(ca) + `"`},
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

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestRoundTrip: what Build and Mutate write, Parse reads back.
func TestRoundTrip(t *testing.T) {
	ca := newCert(t, certOpts{cn: "issuing ca", ca: true}, nil)
	proxy := newCert(t, certOpts{cn: "proxy", uris: []string{"spiffe://mesh/proxy", "http://proxy"}}, nil)
	leaf := newCert(t, certOpts{cn: `tricky "cn", with\backslash;+`, uris: []string{"spiffe://mesh/client"}, dns: []string{"client.example"}}, ca)
	all := Details{Subject: true, Cert: true, Chain: true, URI: true, DNS: true}
	chain := []*x509.Certificate{leaf, ca}

	header, _ := Mutate(`By=spiffe://earlier;Hash=`+hexOf(sha256Of(ca.Raw)), true, true, AppendForward, Build(proxy, chain, all))
	elems, err := Parse(header, Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	e, err := Select(elems, PolicyLast)
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := FormatSubject(leaf.RawSubject)
	want := Element{
		By:         []string{"spiffe://mesh/proxy", "http://proxy"},
		Hash:       sha256Of(leaf.Raw),
		Cert:       leaf.Raw,
		Chain:      [][]byte{leaf.Raw, ca.Raw},
		Subject:    unescapeQuoted(subject),
		HasSubject: true,
		URI:        []string{"spiffe://mesh/client"},
		DNS:        []string{"client.example"},
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("round trip =\n%s\nwant\n%s", summary(e), summary(want))
	}
	if want := `CN=tricky \"cn\"\, with\\backslash\;\+`; subject != want {
		t.Errorf("FormatSubject = %q, want %q", subject, want)
	}
	if e.Subject != `CN=tricky "cn"\, with\backslash\;\+` {
		t.Errorf("parsed Subject = %q", e.Subject)
	}
}

// unescapeQuoted undoes only \" and \\, as Parse does inside quotes.
func unescapeQuoted(s string) string {
	v, err := unquote(`"` + s + `"`)
	if err != nil {
		panic(err)
	}
	return v
}

// TestSANInjection: Envoy does not escape URI SANs (envoy#32945). A client certificate can
// inject pairs; Parse must never hand back the injected certificate as the leaf.
func TestSANInjection(t *testing.T) {
	proxy := newCert(t, certOpts{cn: "proxy", uris: []string{"spiffe://mesh/proxy"}}, nil)
	victim := newCert(t, certOpts{cn: "victim"}, nil)
	injectCert := `spiffe://evil/x;Cert="` + certValue(victim) + `"`
	injectElement := `spiffe://evil/x,Hash=` + hexOf(sha256Of(victim.Raw)) + `;Cert="` + certValue(victim) + `"`

	tests := []struct {
		name    string
		uri     string
		d       Details
		policy  Policy
		wantErr error
	}{
		{"second Cert after the genuine one", injectCert, Details{Cert: true, URI: true}, PolicySingle, ErrDuplicateKey},
		{"Cert where the proxy sent none", injectCert, Details{URI: true}, PolicySingle, ErrHashMismatch},
		{"Hash and Cert after the genuine ones", `spiffe://evil/x;Hash=` + hexOf(sha256Of(victim.Raw)) + `;Cert="` + certValue(victim) + `"`, Details{URI: true}, PolicySingle, ErrDuplicateKey},
		{"Subject after the genuine one", `spiffe://evil/x;Subject="CN=admin"`, Details{Subject: true, URI: true}, PolicySingle, ErrDuplicateKey},
		{"fake element, single", injectElement, Details{URI: true}, PolicySingle, ErrTooManyElements},
		{"By after the genuine pairs", `spiffe://evil/x;By=spiffe://mesh/proxy`, Details{Cert: true, URI: true}, PolicySingle, ErrMalformedPair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attacker := newCert(t, certOpts{cn: "attacker", uris: []string{tt.uri}}, nil)
			header, _ := Mutate("", false, true, SanitizeSet, Build(proxy, []*x509.Certificate{attacker}, tt.d))
			elems, err := Parse(header, Limits{})
			if err == nil {
				_, err = Select(elems, tt.policy)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}

	// The documented PolicyLast hazard: a fake last element is internally consistent.
	attacker := newCert(t, certOpts{cn: "attacker", uris: []string{injectElement}}, nil)
	header, _ := Mutate("", false, true, AppendForward, Build(proxy, []*x509.Certificate{attacker}, Details{URI: true}))
	elems, err := Parse(header, Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	e, err := Select(elems, PolicyLast)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Cert, victim.Raw) {
		t.Fatal("expected the PolicyLast hazard described in doc.go; update the documentation")
	}
}
