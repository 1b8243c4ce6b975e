package extauthz_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/pki"
)

// TestHostileInputs: every hostile input ends in a deny with its exact reason, and the
// decision is logged with that reason. (Allows are listed too where a strange-looking input is
// legitimate.)
func TestHostileInputs(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t, f)
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	billingDN := pki.Subject("CN=billing,O=Example Corp,C=SE")
	expired := f.inter.Leaf("billing", billingDN, pki.Validity(t0.Add(-48*time.Hour), t0.Add(-time.Hour)))
	future := f.inter.Leaf("billing", billingDN, pki.Validity(t0.Add(time.Hour), t0.Add(48*time.Hour)))
	serverEKU := f.inter.Leaf("billing", billingDN, pki.ServerAuth(), win)
	caLeaf := f.inter.Intermediate("billing", billingDN, win)
	otherRoot := pki.NewRoot("Other Root", win)
	untrusted := otherRoot.Leaf("billing", billingDN, win)
	notCA := f.root.Intermediate("not a CA", pki.CA(false), win)
	viaNotCA := notCA.Leaf("billing", billingDN, win)
	pathLen0 := f.root.Intermediate("pathlen 0", pki.MaxPathLen(0), win)
	tooDeep := pathLen0.Intermediate("deeper", win).Leaf("billing", billingDN, win)
	revoked := f.inter.Leaf("billing", billingDN, win)
	f.write(t, "inter.crl", f.inter.CRLPEM(t0.Add(-time.Hour), t0.Add(time.Hour), revoked))
	// One RDN whose CN holds "billing,O=Example Corp,C=SE" literally: a forged DN.
	escapedCommas := f.inter.Leaf("x", rawName(t, [][]pkix.AttributeTypeAndValue{{{Type: cn, Value: "billing,O=Example Corp,C=SE"}}}), win)
	// The right attributes, but all in one multi-valued RDN.
	multiValued := f.inter.Leaf("x", rawName(t, [][]pkix.AttributeTypeAndValue{{{Type: c, Value: "SE"}, {Type: o, Value: "Example Corp"}, {Type: cn, Value: "billing"}}}), win)
	nul := f.inter.Leaf("x", rawName(t, [][]pkix.AttributeTypeAndValue{{{Type: c, Value: "SE"}}, {{Type: o, Value: "Example Corp"}}, {{Type: cn, Value: "billing\x00"}}}), win)

	cfg := strings.Replace(baseConfig, "routes:\n", "routes:\n  - {path_prefix: /api/, mode: bound_token}\n", 1) + tokensConfig + "crl_files: [inter.crl]\n"
	client, hook := f.start(t, cfg)

	pemOf := func(c *pki.Cert) string { return envoyxfcc.EncodePEM(c.PEM()) }
	hash := func(c *pki.Cert) string { return policy.ThumbprintOf(c.DER()).Hex() }
	withCert := func(leaf *pki.Cert, chain ...*pki.Cert) string {
		all := string(leaf.PEM())
		for _, c := range chain {
			all += string(c.PEM())
		}
		return "Hash=" + hash(leaf) + `;Cert="` + pemOf(leaf) + `";Chain="` + envoyxfcc.EncodePEM([]byte(all)) + `"`
	}
	token := func(claims string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"at+jwt","kid":"k1"}`))
		return "Bearer " + h + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	good := s.token(t, f.billing, "read")
	twoBlocks := `Hash=` + hash(f.billing) + `;Cert="` + pemOf(f.billing) + pemOf(f.other) + `"`
	keyBlock := `Cert="` + envoyxfcc.EncodePEM(f.billing.KeyPEM()) + `"`
	rawPlus := strings.ReplaceAll(envoyXFCC(f.billing), "%2B", "+")

	tests := []struct {
		name string
		r    req
		want policy.Reason
	}{
		// XFCC
		{"1 MB XFCC header", req{body: "client_id=billing", xfccHeader: strings.Repeat("A", 1<<20)}, policy.ReasonXFCCMalformed},
		{"10,000 XFCC elements", req{body: "client_id=billing", xfccHeader: strings.Repeat("By=x,", 10000)}, policy.ReasonXFCCElements},
		{"unmatched quote", req{body: "client_id=billing", xfccHeader: `Hash=` + hash(f.billing) + `;Cert="` + pemOf(f.billing)}, policy.ReasonXFCCMalformed},
		{"escaped quote swallowing the closing one", req{body: "client_id=billing", xfccHeader: `Hash=` + hash(f.billing) + `;Cert="` + pemOf(f.billing) + `\"`}, policy.ReasonXFCCMalformed},
		{"Cert injected through a URI SAN with ';'", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.other) + `;URI=spiffe://x;Cert="` + pemOf(f.billing) + `"`}, policy.ReasonXFCCMalformed},
		{"duplicate Hash", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing) + ";Hash=" + hash(f.billing)}, policy.ReasonXFCCMalformed},
		{"Hash of another certificate", req{body: "client_id=billing", xfccHeader: "Hash=" + hash(f.other) + `;Cert="` + pemOf(f.billing) + `"`}, policy.ReasonCertificateMismatch},
		{"Cert with two PEM blocks", req{body: "client_id=billing", xfccHeader: twoBlocks}, policy.ReasonXFCCMalformed},
		{"Cert with trailing garbage", req{body: "client_id=billing", xfccHeader: `Hash=` + hash(f.billing) + `;Cert="` + pemOf(f.billing) + `garbage"`}, policy.ReasonXFCCMalformed},
		{"Cert holding a private key", req{body: "client_id=billing", xfccHeader: keyBlock}, policy.ReasonXFCCMalformed},
		{"Cert not base64", req{body: "client_id=billing", xfccHeader: `Cert="-----BEGIN%20CERTIFICATE-----%0A!!!!%0A-----END%20CERTIFICATE-----%0A"`}, policy.ReasonXFCCMalformed},
		{"literal + in Cert (decoded as +, not space)", req{body: "client_id=billing", xfccHeader: rawPlus}, policy.ReasonOK},
		{"XFCC spoofed next to a different peer certificate", req{body: "client_id=billing", peer: f.other, xfccHeader: envoyXFCC(f.billing)}, policy.ReasonCertificateMismatch},
		// Certificates
		{"expired", req{body: "client_id=billing", xfccHeader: withCert(expired, f.inter)}, policy.ReasonCertificateExpired},
		{"not yet valid", req{body: "client_id=billing", xfccHeader: withCert(future, f.inter)}, policy.ReasonCertificateNotYetValid},
		{"serverAuth only", req{body: "client_id=billing", xfccHeader: withCert(serverEKU, f.inter)}, policy.ReasonCertificateUsage},
		{"CA certificate as leaf", req{body: "client_id=billing", xfccHeader: withCert(caLeaf, f.inter)}, policy.ReasonCertificateIsCA},
		{"chain to an untrusted root", req{body: "client_id=billing", xfccHeader: withCert(untrusted)}, policy.ReasonCertificateUntrusted},
		{"intermediate that is not a CA", req{body: "client_id=billing", xfccHeader: withCert(viaNotCA, notCA)}, policy.ReasonCertificateUntrusted},
		{"path length violated", req{body: "client_id=billing", xfccHeader: withCert(tooDeep, tooDeep.Chain()[1:]...)}, policy.ReasonCertificateInvalid},
		{"revoked", req{body: "client_id=billing", xfccHeader: withCert(revoked, f.inter)}, policy.ReasonCertificateRevoked},
		{"subject DN forged with escaped commas", req{body: "client_id=billing", xfccHeader: withCert(escapedCommas, f.inter)}, policy.ReasonCertificateUnbound},
		{"multi-valued RDN with the right attributes", req{body: "client_id=billing", xfccHeader: withCert(multiValued, f.inter)}, policy.ReasonCertificateUnbound},
		{"NUL byte in the subject", req{body: "client_id=billing", xfccHeader: withCert(nul, f.inter)}, policy.ReasonCertificateUnbound},
		{"SAN of another client", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.svc)}, policy.ReasonCertificateUnbound},
		// Requests
		{"conflicting client_id", req{path: "/oauth2/token?client_id=reports", body: "client_id=billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonClientIDConflict},
		{"client_id in body and Basic, different", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": "Basic cmVwb3J0czo="}}, policy.ReasonClientIDConflict},
		{"client_id in body and Basic, same (two authentication methods)", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": "Basic YmlsbGluZzo="}}, policy.ReasonClientAuthMultiple},
		{"huge body cut by the proxy", req{body: "client_id=billing&x=" + strings.Repeat("a", 1<<20), xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"x-envoy-auth-partial-body": "true"}}, policy.ReasonRequestMalformed},
		{"token route without a body", req{xfccHeader: envoyXFCC(f.billing)}, policy.ReasonClientIDMissing},
		{"unknown certbind_mode", req{mode: "admin", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonUnknownMode},
		{"no route", req{path: "/nowhere", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonNoPolicy},
		// Tokens
		{"valid bound token", req{path: "/api/x", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": "Bearer " + good}}, policy.ReasonOK},
		{"oversized token", req{path: "/api/x", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": "Bearer " + strings.Repeat("a", 20000) + ".b.c"}}, policy.ReasonTokenMalformed},
		{"deeply nested claims", req{path: "/api/x", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": token(`{"iss":"https://as.example.org","x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`)}}, policy.ReasonTokenMalformed},
		{"duplicate claims", req{path: "/api/x", xfccHeader: envoyXFCC(f.billing), headers: map[string]string{"authorization": token(`{"iss":"https://as.example.org","iss":"https://evil"}`)}}, policy.ReasonTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hook.Reset()
			if tc.r.mode == "" && !strings.HasPrefix(tc.r.path, "/api/") && tc.r.path != "/nowhere" {
				tc.r.mode = "client_auth"
			}
			resp, err := client.Check(context.Background(), tc.r.build())
			if err != nil {
				t.Fatal(err)
			}
			got := policy.Reason(resp.GetStatus().GetMessage())
			if resp.GetOkResponse() != nil {
				got = policy.ReasonOK
			}
			if got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
			e := hook.LastEntry()
			if e == nil || e.Data["reason"] != string(tc.want) {
				t.Fatalf("log line %v, want reason %s", e, tc.want)
			}
			line, _ := e.String()
			if len(line) > 4096 {
				t.Errorf("log line of %d bytes: hostile input copied into the log?", len(line))
			}
		})
	}
}

var (
	cn = asn1.ObjectIdentifier{2, 5, 4, 3}
	o  = asn1.ObjectIdentifier{2, 5, 4, 10}
	c  = asn1.ObjectIdentifier{2, 5, 4, 6}
)

func rawName(t *testing.T, rdns [][]pkix.AttributeTypeAndValue) pki.Option {
	t.Helper()
	var seq pkix.RDNSequence
	for _, r := range rdns {
		seq = append(seq, pkix.RelativeDistinguishedNameSET(r))
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return pki.RawSubject(der)
}
