package xfcc

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/certbind/certbind/testenv/envoyxfcc"
)

// TestRoundTrip: what Envoy writes (envoyxfcc.Build and Mutate), Parse reads back.
func TestRoundTrip(t *testing.T) {
	ca := newCert(t, certOpts{cn: "issuing ca", ca: true}, nil)
	proxy := newCert(t, certOpts{cn: "proxy", uris: []string{"spiffe://mesh/proxy", "http://proxy"}}, nil)
	leaf := newCert(t, certOpts{cn: `tricky "cn", with\backslash;+`, uris: []string{"spiffe://mesh/client"}, dns: []string{"client.example"}}, ca)
	all := envoyxfcc.Details{Subject: true, Cert: true, Chain: true, URI: true, DNS: true}
	chain := []*x509.Certificate{leaf, ca}

	header, _ := envoyxfcc.Mutate(`By=spiffe://earlier;Hash=`+hex.EncodeToString(sha256Of(ca.Raw)), true, true, envoyxfcc.AppendForward, envoyxfcc.Build(proxy, chain, all))
	elems, err := Parse(header, Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	e, err := Select(elems, PolicyLast)
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := envoyxfcc.FormatSubject(leaf.RawSubject)
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
	injectElement := `spiffe://evil/x,Hash=` + hex.EncodeToString(sha256Of(victim.Raw)) + `;Cert="` + certValue(victim) + `"`

	tests := []struct {
		name    string
		uri     string
		d       envoyxfcc.Details
		policy  Policy
		wantErr error
	}{
		{"second Cert after the genuine one", injectCert, envoyxfcc.Details{Cert: true, URI: true}, PolicySingle, ErrDuplicateKey},
		{"Cert where the proxy sent none", injectCert, envoyxfcc.Details{URI: true}, PolicySingle, ErrHashMismatch},
		{"Hash and Cert after the genuine ones", `spiffe://evil/x;Hash=` + hex.EncodeToString(sha256Of(victim.Raw)) + `;Cert="` + certValue(victim) + `"`, envoyxfcc.Details{URI: true}, PolicySingle, ErrDuplicateKey},
		{"Subject after the genuine one", `spiffe://evil/x;Subject="CN=admin"`, envoyxfcc.Details{Subject: true, URI: true}, PolicySingle, ErrDuplicateKey},
		{"fake element, single", injectElement, envoyxfcc.Details{URI: true}, PolicySingle, ErrTooManyElements},
		{"By after the genuine pairs", `spiffe://evil/x;By=spiffe://mesh/proxy`, envoyxfcc.Details{Cert: true, URI: true}, PolicySingle, ErrMalformedPair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attacker := newCert(t, certOpts{cn: "attacker", uris: []string{tt.uri}}, nil)
			header, _ := envoyxfcc.Mutate("", false, true, envoyxfcc.SanitizeSet, envoyxfcc.Build(proxy, []*x509.Certificate{attacker}, tt.d))
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
	header, _ := envoyxfcc.Mutate("", false, true, envoyxfcc.AppendForward, envoyxfcc.Build(proxy, []*x509.Certificate{attacker}, envoyxfcc.Details{URI: true}))
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
