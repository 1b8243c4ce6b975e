package policy_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

func TestClientAuth(t *testing.T) {
	w := newWorld(t)
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	expired := w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), pki.Validity(t0.Add(-48*time.Hour), t0.Add(-time.Hour)))
	future := w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), pki.Validity(t0.Add(time.Hour), t0.Add(48*time.Hour)))
	serverOnly := w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), pki.ServerAuth(), win)
	caLeaf := w.inter.Intermediate("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), win)
	notCA := w.root.Intermediate("not a CA", pki.CA(false), win)
	underNotCA := notCA.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), win)
	pathLen0 := w.root.Intermediate("pathlen0", pki.MaxPathLen(0), win)
	tooDeep := pathLen0.Intermediate("deeper", win).Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), win)
	partnerExpired := pki.SelfSigned("partner", pki.Validity(t0.Add(-48*time.Hour), t0.Add(-time.Hour)))
	partnerFuture := pki.SelfSigned("partner", pki.Validity(t0.Add(time.Hour), t0.Add(48*time.Hour)))
	w.write(t, "pki/partner.jwks.json", jwksFor(t, w.partner, partnerExpired, partnerFuture))
	e := w.engine(t, exampleConfig)

	basic := func(user string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"))
	}
	tests := []struct {
		name   string
		cert   *pki.Cert
		req    policy.Request
		want   policy.Reason
		client string
	}{
		{"subject DN bound", w.billing, tokenRequest("billing"), policy.ReasonOK, "billing"},
		{"SAN URI bound", w.reports, tokenRequest("reports"), policy.ReasonOK, "reports"},
		{"self-signed pinned", w.partner, tokenRequest("partner"), policy.ReasonOK, "partner"},
		{"client_id in query", w.billing, policy.Request{Path: "/oauth2/token?client_id=billing"}, policy.ReasonOK, "billing"},
		{"client_id as Basic user", w.billing, policy.Request{Path: "/oauth2/token", Headers: map[string]string{"authorization": basic("billing")}}, policy.ReasonOK, "billing"},
		{"same client_id in body and Basic", w.billing, func() policy.Request {
			r := tokenRequest("billing")
			r.Headers["authorization"] = basic("billing")
			return r
		}(), policy.ReasonClientAuthMultiple, ""},
		{"client_id in the query and Basic", w.billing, policy.Request{Path: "/oauth2/token?client_id=billing", Headers: map[string]string{"authorization": basic("billing")}}, policy.ReasonClientAuthMultiple, ""},

		{"another client's certificate", w.reports, tokenRequest("billing"), policy.ReasonCertificateUnbound, "billing"},
		{"PKI certificate for the self-signed client", w.billing, tokenRequest("partner"), policy.ReasonCertificateUnbound, "partner"},
		{"self-signed certificate for a PKI client", w.partner, tokenRequest("billing"), policy.ReasonCertificateUntrusted, "billing"},
		{"same subject from another CA", w.stranger, tokenRequest("billing"), policy.ReasonCertificateUntrusted, "billing"},
		{"unknown client", w.billing, tokenRequest("nobody"), policy.ReasonUnknownClient, "nobody"},
		{"no certificate", nil, tokenRequest("billing"), policy.ReasonNoCertificate, "billing"},
		{"expired", expired, tokenRequest("billing"), policy.ReasonCertificateExpired, "billing"},
		{"not yet valid", future, tokenRequest("billing"), policy.ReasonCertificateNotYetValid, "billing"},
		{"serverAuth only", serverOnly, tokenRequest("billing"), policy.ReasonCertificateUsage, "billing"},
		{"CA certificate as leaf", caLeaf, tokenRequest("billing"), policy.ReasonCertificateIsCA, "billing"},
		// Go's path builder never accepts a non-CA as issuer, so no chain reaches a trust anchor.
		{"intermediate that is not a CA", underNotCA, tokenRequest("billing"), policy.ReasonCertificateUntrusted, "billing"},
		{"path length violated", tooDeep, tokenRequest("billing"), policy.ReasonCertificateInvalid, "billing"},
		{"expired pinned certificate", partnerExpired, tokenRequest("partner"), policy.ReasonCertificateExpired, "partner"},
		{"pinned certificate not yet valid", partnerFuture, tokenRequest("partner"), policy.ReasonCertificateNotYetValid, "partner"},

		{"no client_id", w.billing, policy.Request{Path: "/oauth2/token"}, policy.ReasonClientIDMissing, ""},
		{"body and query disagree", w.billing, func() policy.Request {
			r := tokenRequest("billing")
			r.Path = "/oauth2/token?client_id=reports"
			return r
		}(), policy.ReasonClientIDConflict, ""},
		{"body and Basic disagree", w.billing, func() policy.Request {
			r := tokenRequest("billing")
			r.Headers["authorization"] = basic("reports")
			return r
		}(), policy.ReasonClientIDConflict, ""},
		{"client_id twice in the body", w.billing, policy.Request{Path: "/oauth2/token",
			Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"},
			Body:    []byte("client_id=billing&client_id=reports")}, policy.ReasonClientIDConflict, ""},
		{"truncated body", w.billing, func() policy.Request {
			r := tokenRequest("billing")
			r.BodyTruncated = true
			return r
		}(), policy.ReasonRequestMalformed, ""},
		{"JSON body", w.billing, policy.Request{Path: "/oauth2/token",
			Headers: map[string]string{"content-type": "application/json"},
			Body:    []byte(`{"client_id":"billing"}`)}, policy.ReasonRequestMalformed, ""},
		{"bad form encoding", w.billing, policy.Request{Path: "/oauth2/token",
			Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"},
			Body:    []byte("client_id=%zz")}, policy.ReasonRequestMalformed, ""},
		{"Basic not base64", w.billing, policy.Request{Path: "/oauth2/token", Headers: map[string]string{"authorization": "Basic !!!"}}, policy.ReasonRequestMalformed, ""},
		{"Basic without ':'", w.billing, policy.Request{Path: "/oauth2/token", Headers: map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("billing"))}}, policy.ReasonRequestMalformed, ""},
		{"Basic user name badly escaped", w.billing, policy.Request{Path: "/oauth2/token", Headers: map[string]string{"authorization": basic("bill%zz")}}, policy.ReasonRequestMalformed, ""},
		{"bad query encoding", w.billing, policy.Request{Path: "/oauth2/token?client_id=%zz"}, policy.ReasonRequestMalformed, ""},
		{"empty client_id", w.billing, tokenRequest(""), policy.ReasonRequestMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := policy.Input{ModeHint: "client_auth", Request: tc.req}
			if tc.cert != nil {
				in.Certificate = presented(t, tc.cert)
			}
			d := decide(e, in)
			if d.Reason != tc.want || d.Allow != (tc.want == policy.ReasonOK) {
				t.Fatalf("reason %s (allow %v, cause %v), want %s", d.Reason, d.Allow, d.Cause, tc.want)
			}
			if d.ClientID != tc.client {
				t.Errorf("client_id %q, want %q", d.ClientID, tc.client)
			}
			if d.Mode != policy.ModeClientAuth {
				t.Errorf("mode %q", d.Mode)
			}
		})
	}
}

func TestPerClientTrustAnchors(t *testing.T) {
	w := newWorld(t)
	// Both roots are trusted globally, but billing is pinned to the test root: a certificate
	// with billing's subject from the other root must not authenticate it (RFC 8705 section 7.4).
	e := w.engine(t, `trust_anchors: [pki/ca.pem, pki/other-ca.pem]
clients:
  - client_id: billing
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_subject_dn: "CN=billing,OU=Payments,O=Example Corp,C=SE"
    trust_anchors: [pki/ca.pem]
  - client_id: loose
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_subject_dn: "CN=billing,OU=Payments,O=Example Corp,C=SE"
`)
	for _, tc := range []struct {
		cert   *pki.Cert
		client string
		want   policy.Reason
	}{
		{w.billing, "billing", policy.ReasonOK},
		{w.stranger, "billing", policy.ReasonCertificateUntrusted},
		{w.stranger, "loose", policy.ReasonOK},
	} {
		d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest(tc.client), Certificate: presented(t, tc.cert)})
		if d.Reason != tc.want {
			t.Errorf("%s as %s: %s (%v), want %s", tc.cert.Cert.Subject.CommonName, tc.client, d.Reason, d.Cause, tc.want)
		}
	}
}

func TestSANMatching(t *testing.T) {
	w := newWorld(t)
	c := w.inter.Leaf("san", pki.DNS("client.example.com", "Alt.Example.COM"), pki.IP("192.0.2.10", "2001:db8::1"),
		pki.Email("Client@Example.COM"), pki.URI("spiffe://example.org/ns/default/sa/client"))
	// Rows from the SAN matching vectors (shared/vectors/rfc8705-vectors.md section G).
	tests := []struct {
		field, value string
		want         policy.Reason
	}{
		{"tls_client_auth_san_dns", "client.example.com", policy.ReasonOK},
		{"tls_client_auth_san_dns", "alt.example.com", policy.ReasonOK},
		{"tls_client_auth_san_dns", "example.com", policy.ReasonCertificateUnbound},
		{"tls_client_auth_san_ip", "192.0.2.10", policy.ReasonOK},
		{"tls_client_auth_san_ip", "::ffff:192.0.2.10", policy.ReasonCertificateUnbound},
		{"tls_client_auth_san_ip", "2001:0DB8:0:0:0:0:0:1", policy.ReasonOK},
		{"tls_client_auth_san_ip", "192.0.2.11", policy.ReasonCertificateUnbound},
		{"tls_client_auth_san_email", "Client@Example.COM", policy.ReasonOK},
		{"tls_client_auth_san_email", "Client@example.com", policy.ReasonOK},
		{"tls_client_auth_san_email", "client@Example.COM", policy.ReasonCertificateUnbound},
		{"tls_client_auth_san_uri", "spiffe://example.org/ns/default/sa/client", policy.ReasonOK},
		{"tls_client_auth_san_uri", "SPIFFE://EXAMPLE.ORG/ns/default/sa/client", policy.ReasonOK},
		{"tls_client_auth_san_uri", "spiffe://example.org/NS/default/sa/client", policy.ReasonCertificateUnbound},
		{"tls_client_auth_san_uri", "spiffe://example.org/ns/default/sa/client/", policy.ReasonCertificateUnbound},
		{"tls_client_auth_subject_dn", "CN=san", policy.ReasonOK},
		{"tls_client_auth_subject_dn", "CN=SAN", policy.ReasonOK},
		{"tls_client_auth_subject_dn", "CN=san,O=x", policy.ReasonCertificateUnbound},
	}
	for _, tc := range tests {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			e := w.engine(t, fmt.Sprintf("trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: c, token_endpoint_auth_method: tls_client_auth, %s: %q}\n", tc.field, tc.value))
			d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("c"), Certificate: presented(t, c)})
			if d.Reason != tc.want {
				t.Fatalf("%s (%v), want %s", d.Reason, d.Cause, tc.want)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	w := newWorld(t)
	cfg := strings.Replace(exampleConfig, "routes:\n", `  - client_id: billing-again
    token_endpoint_auth_method: tls_client_auth
    tls_client_auth_san_dns: twin.example.org
routes:
`, 1)
	e := w.engine(t, cfg)
	twin := w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"), pki.DNS("twin.example.org"))
	nobody := w.inter.Leaf("nobody", pki.Subject("CN=nobody,O=Example Corp,C=SE"))
	tests := []struct {
		name   string
		cert   *pki.Cert
		want   policy.Reason
		client string
	}{
		{"PKI client", w.billing, policy.ReasonOK, "billing"},
		{"SAN client", w.reports, policy.ReasonOK, "reports"},
		{"pinned client", w.partner, policy.ReasonOK, "partner"},
		{"no client", nobody, policy.ReasonNoMatchingClient, ""},
		{"two clients", twin, policy.ReasonAmbiguousClient, ""},
		{"untrusted", w.stranger, policy.ReasonCertificateUntrusted, ""},
		{"no certificate", nil, policy.ReasonNoCertificate, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := policy.Input{Request: policy.Request{Path: "/internal/jobs"}}
			if tc.cert != nil {
				in.Certificate = presented(t, tc.cert)
			}
			d := decide(e, in)
			if d.Reason != tc.want || d.ClientID != tc.client {
				t.Fatalf("%s %q (%v), want %s %q", d.Reason, d.ClientID, d.Cause, tc.want, tc.client)
			}
			if d.Mode != policy.ModeIdentity {
				t.Errorf("mode %q, want identity (from routes)", d.Mode)
			}
		})
	}
}

func TestModeSelection(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, exampleConfig+"  - { path_prefix: /admin/, host: admin.example.org, mode: identity }\n")
	tests := []struct {
		name, hint, host, path string
		want                   policy.Reason
		mode                   policy.Mode
	}{
		{"hint wins over routes", "identity", "", "/oauth2/token", policy.ReasonOK, policy.ModeIdentity},
		{"route by prefix", "", "", "/oauth2/token", policy.ReasonClientIDMissing, policy.ModeClientAuth},
		{"query is not part of the prefix match", "", "", "/other?/oauth2/token", policy.ReasonNoPolicy, ""},
		{"no route", "", "", "/public", policy.ReasonNoPolicy, ""},
		{"unknown hint", "admin", "", "/oauth2/token", policy.ReasonUnknownMode, ""},
		{"host route with port", "", "Admin.Example.org:8443", "/admin/x", policy.ReasonOK, policy.ModeIdentity},
		{"host route, other host", "", "api.example.org", "/admin/x", policy.ReasonNoPolicy, ""},
		// Paths an upstream would normalize into another route are refused, hint or not.
		{"percent-encoded letter", "", "", "/oauth2/%74oken", policy.ReasonRequestMalformed, ""},
		{"percent-encoded slash", "", "", "/oauth2%2Ftoken", policy.ReasonRequestMalformed, ""},
		{"percent-encoded dot", "", "", "/x/%2e%2e/oauth2/token", policy.ReasonRequestMalformed, ""},
		{"dot-dot segment", "", "", "/x/../oauth2/token", policy.ReasonRequestMalformed, ""},
		{"trailing dot-dot", "", "", "/oauth2/token/..", policy.ReasonRequestMalformed, ""},
		{"dot segment", "identity", "", "/./oauth2/token", policy.ReasonRequestMalformed, ""},
		{"empty segment", "", "", "//oauth2/token", policy.ReasonRequestMalformed, ""},
		{"backslash", "", "", "/x\\..\\oauth2/token", policy.ReasonRequestMalformed, ""},
		{"malformed escape", "", "", "/oauth2/token%4", policy.ReasonRequestMalformed, ""},
		{"relative path", "", "", "oauth2/token", policy.ReasonRequestMalformed, ""},
		{"escaped reserved character is fine", "", "", "/oauth2/token%3Bx", policy.ReasonClientIDMissing, policy.ModeClientAuth},
		{"dots inside a segment are fine", "", "", "/oauth2/token..x/.well", policy.ReasonClientIDMissing, policy.ModeClientAuth},
		{"the query is not checked", "", "", "/oauth2/token?x=/../%41", policy.ReasonClientIDMissing, policy.ModeClientAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(e, policy.Input{ModeHint: tc.hint, Request: policy.Request{Host: tc.host, Path: tc.path}, Certificate: presented(t, w.billing)})
			if d.Reason != tc.want || d.Mode != tc.mode {
				t.Fatalf("%s mode %q (%v), want %s mode %q", d.Reason, d.Mode, d.Cause, tc.want, tc.mode)
			}
		})
	}
	if d := decide(policy.NewEngine(policy.EngineConfig{}), policy.Input{ModeHint: "identity"}); d.Reason != policy.ReasonNoPolicy || d.Allow {
		t.Errorf("engine without config: %s allow=%v", d.Reason, d.Allow)
	}
}

func TestCRL(t *testing.T) {
	w := newWorld(t)
	revoked := w.inter.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"))
	w.write(t, "pki/inter.crl", w.inter.CRLPEM(t0.Add(-time.Hour), t0.Add(time.Hour), revoked))
	w.write(t, "pki/inter-stale.crl", w.inter.CRLPEM(t0.Add(-3*time.Hour), t0.Add(-time.Hour)))
	forged := w.otherRoot.Intermediate("Test Intermediate") // same issuer name, other key
	w.write(t, "pki/forged.crl", forged.CRLPEM(t0.Add(-time.Hour), t0.Add(time.Hour), w.billing))
	base := "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: \"CN=billing,OU=Payments,O=Example Corp,C=SE\"}\n"
	tests := []struct {
		name, extra string
		cert        *pki.Cert
		want        policy.Reason
	}{
		{"good", "crl_files: [pki/inter.crl]\n", w.billing, policy.ReasonOK},
		{"revoked", "crl_files: [pki/inter.crl]\n", revoked, policy.ReasonCertificateRevoked},
		{"stale CRL denies by default", "crl_files: [pki/inter-stale.crl]\n", w.billing, policy.ReasonCRLExpired},
		{"stale CRL ignored when configured", "crl_files: [pki/inter-stale.crl]\ncrl_expired: ignore\n", w.billing, policy.ReasonOK},
		{"CRL signed by another key is not applied", "crl_files: [pki/forged.crl]\n", w.billing, policy.ReasonOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := w.engine(t, base+tc.extra)
			d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: presented(t, tc.cert)})
			if d.Reason != tc.want {
				t.Fatalf("%s (%v), want %s", d.Reason, d.Cause, tc.want)
			}
		})
	}
}

func TestThumbprint(t *testing.T) {
	// shared/vectors/rfc8705-vectors.md C.01: x5t#S256 and XFCC hex of a fixed certificate.
	der, err := base64.StdEncoding.DecodeString(c01)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	tp := policy.ThumbprintOf(der)
	if got, want := tp.String(), "EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPw"; got != want {
		t.Errorf("x5t#S256 %s, want %s", got, want)
	}
	if got, want := tp.Hex(), "114065319259df41cb9e004510ba76aac604ad2305c8597eeee81970470528fc"; got != want {
		t.Errorf("hex %s, want %s", got, want)
	}
	for claim, want := range map[string]bool{
		"EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPw":                      true,
		"EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPw=":                     false, // padded
		"EUBlMZJZ30HLngBFELp2qsYErSMFyFl+7ugZcEcFKPw":                      false, // standard alphabet
		"114065319259df41cb9e004510ba76aac604ad2305c8597eeee81970470528fc": false, // hex
		"EUBlMZJZ30HLngBFELp2qsYErSMFyFl-7ugZcEcFKPx":                      false, // same bytes, non-canonical last char
		"": false,
	} {
		if got := tp.MatchesX5tS256(claim); got != want {
			t.Errorf("MatchesX5tS256(%q) = %v, want %v", claim, got, want)
		}
	}
}

func TestCertificateErrorAfterMode(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, exampleConfig)
	bad := policy.Deny(policy.ReasonCertificateMismatch, fmt.Errorf("differs"))
	d := decide(e, policy.Input{Request: tokenRequest("billing"), CertificateErr: bad})
	if d.Reason != policy.ReasonCertificateMismatch || d.Mode != policy.ModeClientAuth || d.Allow {
		t.Errorf("%s mode %q allow %v, want certificate_mismatch in client_auth", d.Reason, d.Mode, d.Allow)
	}
	// No policy outranks a certificate problem: the route is closed whatever is presented.
	d = decide(e, policy.Input{Request: policy.Request{Path: "/public"}, CertificateErr: bad})
	if d.Reason != policy.ReasonNoPolicy {
		t.Errorf("%s, want no_policy", d.Reason)
	}
}

// c01 is certificate C.01 of shared/vectors/rfc8705-vectors.md (base64 DER).
const c01 = `MIIBoDCCAUagAwIBAgIBATAKBggqhkjOPQQDAjBFMQswCQYDVQQGEwJVUzEVMBMGA1UECgwMRXhhbXBsZSBDb3JwMQwwCgYDVQQLDANFbmcxETAPBgNVBAMMCGNsaWVudC0xMB4XDTI1MDEwMTAwMDAwMFoXDTM1MDEwMTAwMDAwMFowRTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDEV4YW1wbGUgQ29ycDEMMAoGA1UECwwDRW5nMREwDwYDVQQDDAhjbGllbnQtMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMAFypzTiTCFoB1U6wd72nnYgMqXKPigfprIQ52eOGfrhQKdpXztvGMNVktb7AhqwLuhRV4K5CYYXH6WhqDnSvajJzAlMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNIADBFAiAa4nxrt2zY/Hjw2K0eHTjo8ylrkZIqLFg1xSrvy7Fo5AIhAJpuBQQKaTWU5jSnGHc9USBdZugKlMMFubuu8x4pxFEB`

func TestUnparseableSubject(t *testing.T) {
	// A subject with a NUL byte: no subject DN registration may match it, but a SAN
	// registration still authenticates the certificate.
	w := newWorld(t)
	raw, err := asn1.Marshal(pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "billing\x00.evil"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := w.inter.Leaf("x", pki.RawSubject(raw), pki.DNS("svc.example.org"))
	e := w.engine(t, "trust_anchors: [pki/ca.pem]\nclients:\n"+
		"  - {client_id: svc, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_dns: svc.example.org}\n"+
		"  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: \"CN=billing\"}\n")
	p := presented(t, c)
	if p.SubjectErr == nil {
		t.Fatal("subject with NUL parsed")
	}
	for id, want := range map[string]policy.Reason{"svc": policy.ReasonOK, "billing": policy.ReasonCertificateUnbound} {
		if d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest(id), Certificate: p}); d.Reason != want {
			t.Errorf("%s: %s (%v), want %s", id, d.Reason, d.Cause, want)
		}
	}
}

func TestSelfSignedJWKSURI(t *testing.T) {
	w := newWorld(t)
	srv := newJWKSServer(t, jwksFor(t, w.partner))
	e := w.engine(t, "jwks_fetch: {timeout: 1s, refresh_interval: 1ns, min_interval: 1ns}\nclients:\n"+
		"  - {client_id: partner, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_uri: \""+srv.URL+"/partner.jwks\"}\n")
	check := func(c *pki.Cert) policy.Decision {
		return decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("partner"), Certificate: presented(t, c)})
	}
	if d := check(w.partner); d.Reason != policy.ReasonOK {
		t.Fatalf("first fetch: %s (%v)", d.Reason, d.Cause)
	}
	if d := check(w.billing); d.Reason != policy.ReasonCertificateUnbound {
		t.Fatalf("unpinned certificate: %s", d.Reason)
	}
	// The registration endpoint fails: the last good set stays in use.
	srv.down.Store(true)
	for i := 0; i < 3; i++ {
		if d := check(w.partner); d.Reason != policy.ReasonOK {
			t.Fatalf("with the endpoint down: %s (%v)", d.Reason, d.Cause)
		}
	}
	// A new certificate registered at the endpoint is picked up on refresh.
	rotated := pki.SelfSigned("partner", pki.Validity(t0.Add(-time.Hour), t0.Add(time.Hour)))
	body := jwksFor(t, rotated)
	srv.body.Store(&body)
	srv.down.Store(false)
	var d policy.Decision
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if d = check(rotated); d.Reason == policy.ReasonOK {
			break
		}
	}
	if d.Reason != policy.ReasonOK {
		t.Fatalf("rotated certificate: %s (%v)", d.Reason, d.Cause)
	}
}

// TestSelfSignedJWKSURINeverLoaded: a self-signed client's jwks_uri that has never loaded fails
// closed for that client, and for identity, where the unread set might hold the certificate
// too (which would make it ambiguous_client).
func TestSelfSignedJWKSURINeverLoaded(t *testing.T) {
	w := newWorld(t)
	srv := newJWKSServer(t, jwksFor(t, w.partner))
	srv.down.Store(true)
	e := w.engine(t, "trust_anchors: [pki/ca.pem]\njwks_fetch: {timeout: 1s, refresh_interval: 1h, min_interval: 1ns}\nclients:\n"+
		"  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: \"CN=billing,OU=Payments,O=Example Corp,C=SE\"}\n"+
		"  - {client_id: partner, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_uri: \""+srv.URL+"/partner.jwks\"}\n")
	clientAuth := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("partner"), Certificate: presented(t, w.partner)})
	identity := decide(e, policy.Input{ModeHint: "identity", Certificate: presented(t, w.billing)})
	for name, d := range map[string]policy.Decision{"client_auth": clientAuth, "identity": identity} {
		if d.Reason != policy.ReasonClientKeysUnavailable || d.Allow {
			t.Errorf("%s with the set never loaded: %s (%v), want client_keys_unavailable", name, d.Reason, d.Cause)
		}
	}
	srv.down.Store(false)
	if d := decide(e, policy.Input{ModeHint: "identity", Certificate: presented(t, w.billing)}); d.Reason != policy.ReasonOK || d.ClientID != "billing" {
		t.Errorf("identity once the set loads: %s %q (%v)", d.Reason, d.ClientID, d.Cause)
	}
}
