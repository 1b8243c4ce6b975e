package policy_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/dn"
)

// FuzzParseConfig feeds arbitrary documents to the configuration loader. Invariants: no panic;
// a rejection is a *ConfigError whose every problem names something; an accepted document
// compiles into a usable configuration.
func FuzzParseConfig(f *testing.F) {
	w := newWorld(f)
	for _, seed := range []string{
		exampleConfig,
		tokenConfig("jwks_file: pki/partner.jwks.json", "optional"),
		"xfcc: {elements: last, trusted_proxies: [spiffe://x]}\nrevocation: {mode: ocsp_then_crl, failure: soft}\n",
		"http_authz: {certificate_format: rfc9440}\ncache: {certificates: 1, ttl: 1s}\n",
		"clients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: 'CN=a+OU=b,O=c'}\n",
		"routes: [{path_prefix: /api/, mode: bound_token, scopes: [a], binding: optional}]\n",
		"{{{", "- a\n- b\n", "trust_anchors: &a [pki/ca.pem]\nintermediates: *a\n", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := policy.ParseConfig([]byte(doc), w.dir, policy.LoadOptions{})
		if err != nil {
			var ce *policy.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConfigError: %v", err, err)
			}
			for _, e := range ce.Unwrap() {
				if e == nil || e.Error() == "" {
					t.Fatalf("empty problem in %v", err)
				}
			}
			return
		}
		if cfg.Generation() == 0 || cfg.XFCC.MaxHeaderBytes <= 0 || cfg.XFCC.MaxChainLength <= 0 {
			t.Fatalf("accepted a configuration without its defaults: %+v", cfg.XFCC)
		}
		for _, cl := range cfg.Clients() {
			if cl.ID == "" {
				t.Fatal("accepted a client without client_id")
			}
		}
	})
}

// FuzzNameConstraints feeds arbitrary nameConstraints extension values to a CA that is both a
// configured trust anchor and a presented intermediate, over a fixed leaf
// CN=billing,O=Partner registered by subject DN. Invariants, for every value crypto/x509
// parses: no panic; parsing the same certificate again gives the same answer; a critical
// extension is accepted exactly when an independent reading (encoding/asn1) finds every
// subtree a form crypto/x509 enforces or a directoryName that dn.FromDER parses, with default
// distances, and never when crypto/x509 itself handles it; and the decision is the one that
// reading predicts: refused while unhandled, certificate_invalid when a directoryName cannot
// be read, else allowed exactly when the leaf is within a permitted directoryName subtree (if
// any) and within no excluded one.
func FuzzNameConstraints(f *testing.F) {
	for _, seed := range [][]byte{
		nameConstraintsValue(subtrees(dirTree("O=Partner")), nil),
		nameConstraintsValue(subtrees(dirTree("O=Example Corp,C=SE")), nil),
		nameConstraintsValue(subtrees(dirTree("O=Partner")), subtrees(dirTree("CN=billing,O=Partner"))),
		nameConstraintsValue(nil, subtrees(dirTree("OU=Payments+O=Partner"))),
		nameConstraintsValue(subtrees(dirTree("o=PARTNER  "), dnsTree("partner.example")), nil),
		nameConstraintsValue(subtrees(dirTree("O=Partner"), otherNameTree()), nil),
		nameConstraintsValue(subtrees(dirTree("O=Partner")), subtrees(registeredIDTree())),
		nameConstraintsValue(subtrees(dirTree("O=Partner", 0x80, 0x01, 0x00)), nil),
		nameConstraintsValue(subtrees(dirTree("O=Partner", 0x81, 0x01, 0x02)), nil),
		nameConstraintsValue(subtrees(generalSubtree(tagDirectoryName, []byte{0x30, 0x00})), nil),
		nameConstraintsValue(subtrees(generalSubtree(tagDirectoryName, []byte{0x30, 0x02, 0x31, 0x00})), nil),
		nameConstraintsValue(subtrees(dnsTree("partner.example")), nil),
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}

	dir := f.TempDir()
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	leafPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fuzz CA"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), RawSubject: nameDER("CN=billing,O=Partner"),
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caTemplate, leafPub, caKey)
	if err != nil {
		f.Fatal(err)
	}
	leafSubject, err := dn.FromDER(nameDER("CN=billing,O=Partner"))
	if err != nil {
		f.Fatal(err)
	}
	const cfgYAML = "trust_anchors: [ca.pem]\nclients:\n" +
		"  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: \"CN=billing,O=Partner\"}\n"

	f.Fuzz(func(t *testing.T, value []byte, crit bool) {
		tmpl := *caTemplate
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidNameConstraints, Critical: crit, Value: value}}
		caDER, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, caKey.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := x509.ParseCertificate(caDER)
		if err != nil {
			return // crypto/x509 refuses the certificate: certbind never sees it
		}
		goUnhandled := slices.ContainsFunc(plain.UnhandledCriticalExtensions, oidNameConstraints.Equal)
		want := readNameConstraints(t, value)

		var accepted []bool
		for range 2 {
			p, err := policy.ParsePresented(leafDER, [][]byte{caDER})
			if err != nil {
				t.Fatalf("ParsePresented: %v", err)
			}
			unhandled := slices.ContainsFunc(p.Intermediates[0].UnhandledCriticalExtensions, oidNameConstraints.Equal)
			accepted = append(accepted, !unhandled)
		}
		if accepted[0] != accepted[1] {
			t.Fatalf("%x: accepted %v, then %v", value, accepted[0], accepted[1])
		}
		switch {
		case !goUnhandled && !accepted[0]:
			t.Fatalf("%x: certbind flagged an extension crypto/x509 handles", value)
		case goUnhandled && accepted[0] != want.enforced:
			t.Fatalf("%x: critical extension accepted %v, but the independent reading says enforceable %v", value, accepted[0], want.enforced)
		}

		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := policy.ParseConfig([]byte(cfgYAML), dir, policy.LoadOptions{})
		if err != nil {
			t.Fatalf("%x: a CA crypto/x509 parses does not load: %v", value, err)
		}
		p, err := cfg.ParsePresented(leafDER, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return t0 }})
		d := e.Decide(context.Background(), policy.Input{ModeHint: "client_auth", Request: tokenRequest("billing"), Certificate: p})
		wantReason := policy.ReasonOK
		switch {
		case goUnhandled && !accepted[0], want.unreadable, !want.allows(leafSubject):
			wantReason = policy.ReasonCertificateInvalid
		}
		if d.Reason != wantReason {
			t.Fatalf("%x (critical %v): %s (%v), want %s", value, crit, d.Reason, d.Cause, wantReason)
		}
	})
}

// readNC is an independent reading of a nameConstraints value (RFC 5280 §4.2.1.10) with
// encoding/asn1, for FuzzNameConstraints.
type readNC struct {
	permitted, excluded []dn.Name
	enforced            bool // every subtree handled by crypto/x509 or certbind, distances default
	unreadable          bool // a directoryName base dn.FromDER rejects
}

func (r readNC) allows(n dn.Name) bool {
	if slices.ContainsFunc(r.excluded, n.Within) {
		return false
	}
	return len(r.permitted) == 0 || slices.ContainsFunc(r.permitted, n.Within)
}

// readNameConstraints reads a value crypto/x509 has already accepted as NameConstraints.
func readNameConstraints(t *testing.T, value []byte) readNC {
	out := readNC{enforced: true}
	var nc asn1.RawValue
	if rest, err := asn1.Unmarshal(value, &nc); err != nil || len(rest) > 0 {
		t.Fatalf("%x: crypto/x509 accepts what encoding/asn1 does not: %v", value, err)
	}
	// elements splits DER contents into values; crypto/x509 reads all but what follows the
	// base of a subtree, so only there may it fail.
	elements := func(b []byte, mayFail bool) ([]asn1.RawValue, bool) {
		var out []asn1.RawValue
		for len(b) > 0 {
			var v asn1.RawValue
			rest, err := asn1.Unmarshal(b, &v)
			if err != nil {
				if mayFail && len(out) > 0 {
					return out, false
				}
				t.Fatalf("%x: crypto/x509 accepts what encoding/asn1 does not: %v", value, err)
			}
			out, b = append(out, v), rest
		}
		return out, true
	}
	lists, _ := elements(nc.Bytes, false)
	for _, list := range lists {
		subtrees, _ := elements(list.Bytes, false)
		for _, subtree := range subtrees {
			parts, ok := elements(subtree.Bytes, true)
			if !ok {
				out.enforced = false
			}
			base := parts[0]
			switch {
			case base.Class != asn1.ClassContextSpecific:
				out.enforced = false
			case base.Tag == 4 && base.IsCompound:
				n, err := dn.FromDER(base.Bytes)
				if err != nil {
					out.unreadable, out.enforced = true, false
				}
				if list.Tag == 0 {
					out.permitted = append(out.permitted, n)
				} else {
					out.excluded = append(out.excluded, n)
				}
			case !base.IsCompound && (base.Tag == 1 || base.Tag == 2 || base.Tag == 6 || base.Tag == 7):
			default:
				out.enforced = false
			}
			for _, d := range parts[1:] {
				if d.Class != asn1.ClassContextSpecific || d.Tag != 0 || d.IsCompound || !bytes.Equal(d.Bytes, []byte{0}) || len(parts) > 2 {
					out.enforced = false
				}
			}
		}
	}
	return out
}
