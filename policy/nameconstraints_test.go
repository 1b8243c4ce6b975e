package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/dn"
	"github.com/certbind/certbind/testenv/pki"
)

// DER builders for nameConstraints (RFC 5280 §4.2.1.10) and subjectAltName extensions, which
// crypto/x509 cannot write with directoryName entries.

var (
	oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// nameDER encodes an RFC 4514 string (most specific RDN first) as a DER Name.
func nameDER(rfc4514 string) []byte {
	n, err := dn.Parse(rfc4514)
	if err != nil {
		panic(err)
	}
	var seq pkix.RDNSequence
	for _, rdn := range n.RDNs() {
		var set pkix.RelativeDistinguishedNameSET
		for _, a := range rdn {
			set = append(set, pkix.AttributeTypeAndValue{Type: a.Type, Value: a.Value})
		}
		seq = append(seq, set)
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		panic(err)
	}
	return der
}

// generalSubtree encodes a GeneralSubtree whose base has the given tag and contents; tail is
// what follows the base (an encoded minimum or maximum).
func generalSubtree(tag cbasn1.Tag, base []byte, tail ...byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(base) })
		b.AddBytes(tail)
	})
	return b.BytesOrPanic()
}

var (
	tagDirectoryName = cbasn1.Tag(4).ContextSpecific().Constructed()
	tagDNSName       = cbasn1.Tag(2).ContextSpecific()
	tagURI           = cbasn1.Tag(6).ContextSpecific()
	tagOtherName     = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagRegisteredID  = cbasn1.Tag(8).ContextSpecific()
)

func dirTree(rfc4514 string, tail ...byte) []byte {
	return generalSubtree(tagDirectoryName, nameDER(rfc4514), tail...)
}

func dnsTree(domain string) []byte { return generalSubtree(tagDNSName, []byte(domain)) }

// otherNameTree is an otherName subtree (a UPN, as Microsoft PKIs write them).
func otherNameTree() []byte {
	var b cryptobyte.Builder
	b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("@partner.example")) })
	})
	return generalSubtree(tagOtherName, b.BytesOrPanic())
}

func registeredIDTree() []byte {
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999})
	if err != nil {
		panic(err)
	}
	return generalSubtree(tagRegisteredID, oid[2:]) // the OID's contents, implicitly tagged
}

// nameConstraintsValue encodes NameConstraints; a nil list is absent.
func nameConstraintsValue(permitted, excluded [][]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for i, list := range [][][]byte{permitted, excluded} {
			if list == nil {
				continue
			}
			b.AddASN1(cbasn1.Tag(i).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				for _, s := range list {
					b.AddBytes(s)
				}
			})
		}
	})
	return b.BytesOrPanic()
}

const (
	isCritical  = true
	notCritical = false
)

// constrained adds a nameConstraints extension to a CA.
func constrained(crit bool, permitted, excluded [][]byte) pki.Option {
	return pki.Extension(pkix.Extension{Id: oidNameConstraints, Critical: crit, Value: nameConstraintsValue(permitted, excluded)})
}

// sanWithDirNames writes a subjectAltName of one URI and directoryNames, critical as RFC 5280
// §4.2.1.6 requires with an empty subject.
func sanWithDirNames(uri string, dirNames ...string) pki.Option {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagURI, func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
		for _, n := range dirNames {
			b.AddASN1(tagDirectoryName, func(b *cryptobyte.Builder) { b.AddBytes(nameDER(n)) })
		}
	})
	return pki.Extension(pkix.Extension{Id: oidSubjectAltName, Critical: true, Value: b.BytesOrPanic()})
}

var emptySubject = pki.RawSubject([]byte{0x30, 0x00})

// hierarchy is what one test case presents and configures.
type hierarchy struct {
	anchors    []*pki.Cert
	configured []*pki.Cert // in intermediates:, not presented
	chain      [][]byte    // presented, leaf first
	crl        []byte      // PEM, in crl_files when set
}

var ncWindow = pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))

// throughCA is the common shape: root (rootOpts) -> intermediate interDN (interOpts) -> leaf,
// the client presenting the leaf and the intermediate.
func throughCA(rootOpts []pki.Option, interDN string, interOpts []pki.Option, leafOpts ...pki.Option) func() hierarchy {
	return func() hierarchy {
		root := pki.NewRoot("NC Root", append([]pki.Option{ncWindow}, rootOpts...)...)
		inter := root.Intermediate("", append([]pki.Option{pki.Subject(interDN)}, interOpts...)...)
		leaf := inter.Leaf("", leafOpts...)
		return hierarchy{anchors: []*pki.Cert{root}, chain: leaf.ChainDER()}
	}
}

func pkiOpts(o ...pki.Option) []pki.Option { return o }

func subtrees(t ...[]byte) [][]byte { return t }

// TestDirectoryNameConstraints: RFC 5280 §6.1.3 (b) and (c) for directoryName, through the
// Engine in client_auth and identity modes. Before certbind enforced them, every non-critical
// deny row below was allowed (the CA's constraint ignored) and every critical row was refused
// with x509's UnhandledCriticalExtension.
func TestDirectoryNameConstraints(t *testing.T) {
	const (
		billingDN = "CN=billing,OU=Payments,O=Example Corp,C=SE"
		partnerCA = "CN=Partner CA,O=Partner"
		svcURI    = "spiffe://partner.example/svc"
	)
	permitPartner := func(crit bool) []pki.Option { return pkiOpts(constrained(crit, subtrees(dirTree("O=Partner")), nil)) }
	twoLevels := func(leafDN string) func() hierarchy {
		return throughCA(pkiOpts(constrained(isCritical, subtrees(dirTree("O=Example")), nil)),
			"CN=Payments CA,OU=Payments,O=Example",
			pkiOpts(constrained(notCritical, subtrees(dirTree("OU=Payments,O=Example"), dirTree("O=Other")), nil)),
			pki.Subject(leafDN))
	}
	tests := []struct {
		name    string
		h       func() hierarchy
		subject string // the registered client's subject DN; "" registers svcURI instead
		want    policy.Reason
		cause   string // substring of the deny's cause
	}{
		{
			name:    "non-critical permitted O=Partner, leaf O=Example Corp",
			h:       throughCA(nil, partnerCA, permitPartner(notCritical), pki.Subject(billingDN)),
			subject: billingDN,
			want:    policy.ReasonCertificateInvalid,
			cause:   `name constraints of "CN=Partner CA,O=Partner": subject "CN=billing,OU=Payments,O=Example Corp,C=SE" is not within a permitted directoryName subtree ("O=Partner")`,
		},
		{
			name:    "non-critical permitted O=Partner, leaf within",
			h:       throughCA(nil, partnerCA, permitPartner(notCritical), pki.Subject("CN=billing,OU=Payments,O=Partner")),
			subject: "CN=billing,OU=Payments,O=Partner",
			want:    policy.ReasonOK,
		},
		{
			name:    "critical permitted O=Partner, leaf within",
			h:       throughCA(nil, partnerCA, permitPartner(isCritical), pki.Subject("CN=billing,OU=Payments,O=Partner")),
			subject: "CN=billing,OU=Payments,O=Partner",
			want:    policy.ReasonOK,
		},
		{
			name:    "critical permitted O=Partner, leaf outside",
			h:       throughCA(nil, partnerCA, permitPartner(isCritical), pki.Subject(billingDN)),
			subject: billingDN,
			want:    policy.ReasonCertificateInvalid,
			cause:   `subject "CN=billing,OU=Payments,O=Example Corp,C=SE" is not within a permitted directoryName subtree`,
		},
		{
			name: "critical, intermediate configured rather than presented",
			h: func() hierarchy {
				root := pki.NewRoot("NC Root", ncWindow)
				inter := root.Intermediate("", pki.Subject(partnerCA), constrained(isCritical, subtrees(dirTree("O=Partner")), nil))
				leaf := inter.Leaf("", pki.Subject("CN=billing,O=Partner"))
				return hierarchy{anchors: []*pki.Cert{root}, configured: []*pki.Cert{inter}, chain: [][]byte{leaf.DER()}}
			},
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonOK,
		},
		{
			name: "case and spacing differences are within (caseIgnoreMatch)",
			h: throughCA(nil, "CN=Partner CA,O=Partner Inc,C=SE",
				pkiOpts(constrained(isCritical, subtrees(dirTree("o=PARTNER   inc,c=se")), nil)),
				pki.Subject("CN=billing,OU=Payments,O=partner inc,C=SE")),
			subject: "CN=billing,OU=Payments,O=partner inc,C=SE",
			want:    policy.ReasonOK,
		},
		{
			name: "case folding does not cross the ASCII boundary",
			h: throughCA(nil, "CN=Partner CA,O=Partner",
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner"), dirTree("O=Kelvin")), nil)),
				pki.Subject("CN=billing,O=\u212Aelvin")),
			subject: "CN=billing,O=\u212Aelvin",
			want:    policy.ReasonCertificateInvalid,
			cause:   "is not within a permitted directoryName subtree",
		},
		{
			name: "multi-valued RDN within a multi-valued base",
			h: throughCA(nil, "CN=Partner CA,OU=Payments+O=Partner",
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner+OU=Payments")), nil)),
				pki.Subject("CN=billing,OU=Payments+O=Partner")),
			subject: "CN=billing,OU=Payments+O=Partner",
			want:    policy.ReasonOK,
		},
		{
			name: "separate RDNs are not within a multi-valued base",
			h: throughCA(nil, "CN=Partner CA,OU=Payments+O=Partner",
				pkiOpts(constrained(notCritical, subtrees(dirTree("O=Partner+OU=Payments")), nil)),
				pki.Subject("CN=billing,OU=Payments,O=Partner")),
			subject: "CN=billing,OU=Payments,O=Partner",
			want:    policy.ReasonCertificateInvalid,
			cause:   `subject "CN=billing,OU=Payments,O=Partner" is not within a permitted directoryName subtree ("O=Partner+OU=Payments")`,
		},
		{
			name:  "empty subject, directoryName SAN outside",
			h:     throughCA(nil, partnerCA, permitPartner(notCritical), emptySubject, sanWithDirNames(svcURI, "CN=billing,O=Example Corp")),
			want:  policy.ReasonCertificateInvalid,
			cause: `directoryName SAN "CN=billing,O=Example Corp" is not within a permitted directoryName subtree`,
		},
		{
			name: "empty subject, directoryName SAN inside",
			h:    throughCA(nil, partnerCA, permitPartner(isCritical), emptySubject, sanWithDirNames(svcURI, "CN=svc,O=Partner")),
			want: policy.ReasonOK,
		},
		{
			name: "empty subject, no directoryName SAN",
			h:    throughCA(nil, partnerCA, permitPartner(isCritical), emptySubject, pki.URI(svcURI)),
			want: policy.ReasonOK,
		},
		{
			name: "excluded wins over permitted",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(notCritical, subtrees(dirTree("O=Partner")), subtrees(dirTree("OU=Payments,O=Partner")))),
				pki.Subject("CN=billing,OU=Payments,O=Partner")),
			subject: "CN=billing,OU=Payments,O=Partner",
			want:    policy.ReasonCertificateInvalid,
			cause:   `subject "CN=billing,OU=Payments,O=Partner" is within excluded directoryName subtree "OU=Payments,O=Partner"`,
		},
		{
			name: "excluded only, leaf outside it",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(isCritical, nil, subtrees(dirTree("OU=Payments,O=Partner")))),
				pki.Subject("CN=billing,OU=Sales,O=Partner")),
			subject: "CN=billing,OU=Sales,O=Partner",
			want:    policy.ReasonOK,
		},
		{
			name:    "two levels, within both",
			h:       twoLevels("CN=billing,OU=Payments,O=Example"),
			subject: "CN=billing,OU=Payments,O=Example",
			want:    policy.ReasonOK,
		},
		{
			name:    "two levels, within the root's only",
			h:       twoLevels("CN=billing,OU=Sales,O=Example"),
			subject: "CN=billing,OU=Sales,O=Example",
			want:    policy.ReasonCertificateInvalid,
			cause:   `name constraints of "CN=Payments CA,OU=Payments,O=Example": subject "CN=billing,OU=Sales,O=Example" is not within a permitted directoryName subtree ("OU=Payments,O=Example", "O=Other")`,
		},
		{
			name:    "two levels, within the intermediate's only",
			h:       twoLevels("CN=billing,O=Other"),
			subject: "CN=billing,O=Other",
			want:    policy.ReasonCertificateInvalid,
			cause:   `name constraints of "CN=NC Root": subject "CN=billing,O=Other" is not within a permitted directoryName subtree ("O=Example")`,
		},
		{
			name: "the trust anchor's constraints apply to the intermediate",
			h: throughCA(pkiOpts(constrained(isCritical, subtrees(dirTree("O=Example")), nil)), partnerCA, nil,
				pki.Subject("CN=billing,O=Example")),
			subject: "CN=billing,O=Example",
			want:    policy.ReasonCertificateInvalid,
			cause:   `name constraints of "CN=NC Root": subject "CN=Partner CA,O=Partner" is not within`,
		},
		{
			// A key rollover certificate (subject == issuer == the root's name) is not checked
			// (§6.1.3 (b)); the intermediate and leaf below it are.
			name: "self-issued intermediate is skipped",
			h: func() hierarchy {
				root := pki.NewRoot("NC Root", ncWindow, constrained(isCritical, subtrees(dirTree("O=Partner")), nil))
				rollover := root.Intermediate("", pki.RawSubject(root.Cert.RawSubject))
				inter := rollover.Intermediate("", pki.Subject(partnerCA))
				leaf := inter.Leaf("", pki.Subject("CN=billing,O=Partner"))
				return hierarchy{anchors: []*pki.Cert{root}, chain: leaf.ChainDER()}
			},
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonOK,
		},
		{
			// Only a self-issued intermediate is skipped: a leaf named as its issuer is checked
			// against that issuer's constraints.
			name: "self-issued leaf is checked",
			h: throughCA(nil, partnerCA, pkiOpts(constrained(notCritical, subtrees(dirTree("OU=Clients,O=Partner")), nil)),
				pki.Subject(partnerCA)),
			subject: partnerCA,
			want:    policy.ReasonCertificateInvalid,
			cause:   `subject "CN=Partner CA,O=Partner" is not within a permitted directoryName subtree ("OU=Clients,O=Partner")`,
		},
		{
			name: "critical, Go still enforces the dNSName subtree",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner"), dnsTree("partner.example")), nil)),
				pki.Subject("CN=billing,O=Partner"), pki.DNS("billing.example.org")),
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonCertificateInvalid,
			cause:   `"billing.example.org" is not permitted`,
		},
		{
			name: "critical with an otherName subtree stays refused",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner"), otherNameTree()), nil)),
				pki.Subject("CN=billing,O=Partner")),
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonCertificateInvalid,
			cause:   "unhandled critical extension",
		},
		{
			name: "critical with a registeredID subtree stays refused",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner")), subtrees(registeredIDTree()))),
				pki.Subject("CN=billing,O=Partner")),
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonCertificateInvalid,
			cause:   "unhandled critical extension",
		},
		{
			name: "critical with a maximum stays refused",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner", 0x81, 0x01, 0x02)), nil)),
				pki.Subject("CN=billing,O=Partner")),
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonCertificateInvalid,
			cause:   "unhandled critical extension",
		},
		{
			name: "critical with minimum 0 written out is accepted",
			h: throughCA(nil, partnerCA,
				pkiOpts(constrained(isCritical, subtrees(dirTree("O=Partner", 0x80, 0x01, 0x00)), nil)),
				pki.Subject("CN=billing,O=Partner")),
			subject: "CN=billing,O=Partner",
			want:    policy.ReasonOK,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkConstrained(t, tc.h(), tc.subject, tc.want, tc.cause)
		})
	}
}

// TestDirectoryNameConstraintsSeveralChains: of the chains Verify returns, only those that hold
// the directoryName constraints count, for the rest of validation too. The intermediate is
// cross-certified by a root that excludes the leaf's name, and that root revoked it: the chain
// through the other root stands.
func TestDirectoryNameConstraintsSeveralChains(t *testing.T) {
	const billingDN = "CN=billing,OU=Payments,O=Example Corp,C=SE"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	excluding := pki.NewRoot("Excluding Root", ncWindow, constrained(notCritical, nil, subtrees(dirTree("O=Example Corp,C=SE"))))
	open := pki.NewRoot("Open Root", ncWindow)
	viaExcluding := excluding.Intermediate("Cross CA", pki.Key(key))
	viaOpen := open.Intermediate("Cross CA", pki.Key(key))
	leaf := viaExcluding.Leaf("", pki.Subject(billingDN))
	crl := excluding.CRLPEM(t0.Add(-time.Hour), t0.Add(time.Hour), viaExcluding)
	chain := [][]byte{leaf.DER(), viaExcluding.DER(), viaOpen.DER()}

	tests := []struct {
		name    string
		anchors []*pki.Cert
		want    policy.Reason
		cause   string
	}{
		{"both roots: the chain through the open root", []*pki.Cert{excluding, open}, policy.ReasonOK, ""},
		{"only the excluding root", []*pki.Cert{excluding}, policy.ReasonCertificateInvalid,
			`name constraints of "CN=Excluding Root": subject "CN=billing,OU=Payments,O=Example Corp,C=SE" is within excluded directoryName subtree "O=Example Corp,C=SE"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkConstrained(t, hierarchy{anchors: tc.anchors, chain: chain, crl: crl}, billingDN, tc.want, tc.cause)
		})
	}
}

// checkConstrained loads a configuration trusting h.anchors with one client, registered by
// subject DN (or, when subject is "", by the SAN URI spiffe://partner.example/svc), and
// decides h.chain in client_auth and identity modes.
func checkConstrained(t *testing.T, h hierarchy, subject string, want policy.Reason, cause string) {
	t.Helper()
	w := &world{dir: t.TempDir()}
	list := func(key, prefix string, certs []*pki.Cert) string {
		var names []string
		for i, c := range certs {
			name := fmt.Sprintf("pki/%s%d.pem", prefix, i)
			w.write(t, name, c.PEM())
			names = append(names, name)
		}
		return key + ": [" + strings.Join(names, ", ") + "]\n"
	}
	yaml := list("trust_anchors", "anchor", h.anchors) + list("intermediates", "intermediate", h.configured)
	if h.crl != nil {
		w.write(t, "pki/chain.crl", h.crl)
		yaml += "crl_files: [pki/chain.crl]\n"
	}
	clientID := "billing"
	if subject != "" {
		yaml += fmt.Sprintf("clients:\n  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: %q}\n", subject)
	} else {
		clientID = "svc"
		yaml += "clients:\n  - {client_id: svc, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_uri: \"spiffe://partner.example/svc\"}\n"
	}
	cfg := w.load(t, yaml)
	e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return t0 }})
	for _, mode := range []string{"client_auth", "identity"} {
		// Parsed per mode: the second parse takes the intermediates interned by the first.
		p, err := cfg.ParsePresented(h.chain[0], h.chain[1:])
		if err != nil {
			t.Fatal(err)
		}
		in := policy.Input{ModeHint: mode, Certificate: p}
		if mode == "client_auth" {
			in.Request = tokenRequest(clientID)
		}
		d := decide(e, in)
		if d.Reason != want || d.Allow != (want == policy.ReasonOK) {
			t.Fatalf("%s: %s (allow %v, cause %v), want %s", mode, d.Reason, d.Allow, d.Cause, want)
		}
		if want == policy.ReasonOK {
			if d.ClientID != clientID {
				t.Fatalf("%s: client %q, want %q", mode, d.ClientID, clientID)
			}
			continue
		}
		if d.Cause == nil || !strings.Contains(d.Cause.Error(), cause) {
			t.Fatalf("%s: cause %v, want it to contain %q", mode, d.Cause, cause)
		}
	}
}
