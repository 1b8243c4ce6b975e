// Package pki mints throw-away X.509 hierarchies for certbind's tests, demo and test bed: a root,
// intermediates, client and server leaves with the names, key usages and validity a test asks for,
// and CRLs. Everything is generated in memory with fresh ECDSA P-256 keys; nothing here is meant to
// protect anything real.
//
//	root := pki.NewRoot("Test Root", pki.ValidFor(now, time.Hour))
//	inter := root.Intermediate("Test Intermediate")
//	leaf := inter.Leaf(pki.Subject("CN=billing,O=Example"), pki.ClientAuth())
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"time"
)

// Cert is a generated certificate and its private key.
type Cert struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	issuer *Cert // nil for self-signed
	opts   options
}

// DER returns the certificate's DER bytes.
func (c *Cert) DER() []byte { return c.Cert.Raw }

// PEM returns the certificate as one PEM block.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the private key as a PKCS#8 PEM block.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(fmt.Sprintf("pki: marshal key: %v", err)) // unreachable for keys made here
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Chain returns this certificate followed by its issuers up to, but excluding, the root: what a
// TLS client sends.
func (c *Cert) Chain() []*Cert {
	chain := []*Cert{c}
	for p := c.issuer; p != nil && p.issuer != nil; p = p.issuer {
		chain = append(chain, p)
	}
	return chain
}

// ChainPEM returns Chain() as concatenated PEM blocks, leaf first.
func (c *Cert) ChainPEM() []byte {
	var b bytes.Buffer
	for _, x := range c.Chain() {
		b.Write(x.PEM())
	}
	return b.Bytes()
}

// ChainDER returns the DER of Chain(), leaf first.
func (c *Cert) ChainDER() [][]byte {
	var out [][]byte
	for _, x := range c.Chain() {
		out = append(out, x.DER())
	}
	return out
}

// Thumbprint returns the SHA-256 of the certificate's DER.
func (c *Cert) Thumbprint() [32]byte { return sha256.Sum256(c.Cert.Raw) }

// Option shapes a certificate.
type Option func(*options)

type options struct {
	subject     []byte // raw RDNSequence; nil means CN=<name>
	cn          string
	notBefore   time.Time
	notAfter    time.Time
	eku         []x509.ExtKeyUsage
	ekuSet      bool
	isCA        bool
	caSet       bool
	maxPathLen  int
	pathLenSet  bool
	dns         []string
	ips         []net.IP
	emails      []string
	uris        []*url.URL
	key         crypto.Signer
	keyUsage    x509.KeyUsage
	crlDistPts  []string
	ocspServers []string
	extra       []pkix.Extension
}

// Subject sets the subject from an RFC 4514 string with the attributes CN, OU, O, L, ST, C, DC,
// emailAddress, serialNumber; for anything more exotic use RawSubject.
func Subject(rfc4514 string) Option {
	return func(o *options) {
		raw, err := rawSubject(rfc4514)
		if err != nil {
			panic(err)
		}
		o.subject = raw
	}
}

// RawSubject sets the subject's DER RDNSequence as is (multi-valued RDNs, odd string types, NULs).
func RawSubject(der []byte) Option { return func(o *options) { o.subject = der } }

// ValidFor sets the validity window to [from, from+d).
func ValidFor(from time.Time, d time.Duration) Option {
	return func(o *options) { o.notBefore, o.notAfter = from, from.Add(d) }
}

// Validity sets the validity window exactly.
func Validity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// ClientAuth sets the extended key usage to clientAuth only.
func ClientAuth() Option { return EKU(x509.ExtKeyUsageClientAuth) }

// ServerAuth sets the extended key usage to serverAuth only.
func ServerAuth() Option { return EKU(x509.ExtKeyUsageServerAuth) }

// EKU sets the extended key usages; EKU() with no argument omits the extension.
func EKU(u ...x509.ExtKeyUsage) Option {
	return func(o *options) { o.eku, o.ekuSet = u, true }
}

// CA makes the certificate a CA (or, with false, explicitly not one).
func CA(isCA bool) Option { return func(o *options) { o.isCA, o.caSet = isCA, true } }

// MaxPathLen sets the CA's path length constraint (0 means no further intermediates).
func MaxPathLen(n int) Option { return func(o *options) { o.maxPathLen, o.pathLenSet = n, true } }

// DNS adds DNS SANs.
func DNS(names ...string) Option { return func(o *options) { o.dns = append(o.dns, names...) } }

// IP adds IP SANs.
func IP(ips ...string) Option {
	return func(o *options) {
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil {
				panic("pki: bad IP " + s)
			}
			o.ips = append(o.ips, ip)
		}
	}
}

// Email adds email SANs.
func Email(addrs ...string) Option { return func(o *options) { o.emails = append(o.emails, addrs...) } }

// URI adds URI SANs.
func URI(uris ...string) Option {
	return func(o *options) {
		for _, s := range uris {
			u, err := url.Parse(s)
			if err != nil {
				panic(err)
			}
			o.uris = append(o.uris, u)
		}
	}
}

// Key uses the given key instead of a fresh P-256 key.
func Key(k crypto.Signer) Option { return func(o *options) { o.key = k } }

// CRLDistributionPoints sets the CRL distribution point URLs.
func CRLDistributionPoints(urls ...string) Option {
	return func(o *options) { o.crlDistPts = urls }
}

// OCSPServers sets the authority information access OCSP URLs.
func OCSPServers(urls ...string) Option { return func(o *options) { o.ocspServers = urls } }

// Extension adds an extension written as is (x509.Certificate.ExtraExtensions), for what
// CreateCertificate cannot write, such as directoryName name constraints. An extension with the
// OID of one CreateCertificate writes replaces it.
func Extension(ext pkix.Extension) Option { return func(o *options) { o.extra = append(o.extra, ext) } }

var serial atomic.Int64

// defaultStart is used when no validity is given: the present, with a minute's slack.
func defaultWindow() (time.Time, time.Time) {
	now := time.Now().Truncate(time.Second)
	return now.Add(-time.Minute), now.Add(24 * time.Hour)
}

func build(name string, issuer *Cert, o options) *Cert {
	key := o.key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		key = k
	}
	if o.notBefore.IsZero() {
		if issuer != nil {
			o.notBefore, o.notAfter = issuer.opts.notBefore, issuer.opts.notAfter
		} else {
			o.notBefore, o.notAfter = defaultWindow()
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1) + time.Now().UnixNano()%1e9*1000),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              o.keyUsage,
		ExtKeyUsage:           o.eku,
		BasicConstraintsValid: o.caSet,
		IsCA:                  o.isCA,
		DNSNames:              o.dns,
		IPAddresses:           o.ips,
		EmailAddresses:        o.emails,
		URIs:                  o.uris,
		CRLDistributionPoints: o.crlDistPts,
		OCSPServer:            o.ocspServers,
		ExtraExtensions:       o.extra,
	}
	if o.subject != nil {
		tmpl.RawSubject = o.subject
	}
	if o.pathLenSet {
		tmpl.MaxPathLen = o.maxPathLen
		tmpl.MaxPathLenZero = o.maxPathLen == 0
	} else if o.isCA {
		tmpl.MaxPathLen = -1
	}
	parent, signer := tmpl, key
	if issuer != nil {
		parent, signer = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		panic(fmt.Sprintf("pki: create %q: %v", name, err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return &Cert{Cert: cert, Key: key, issuer: issuer, opts: o}
}

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewRoot mints a self-signed root CA.
func NewRoot(cn string, opts ...Option) *Cert {
	o := apply(append([]Option{CA(true)}, opts...))
	o.keyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	return build(cn, nil, o)
}

// Intermediate mints a CA issued by c.
func (c *Cert) Intermediate(cn string, opts ...Option) *Cert {
	o := apply(append([]Option{CA(true)}, opts...))
	if o.isCA {
		o.keyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		o.keyUsage = x509.KeyUsageDigitalSignature
	}
	return build(cn, c, o)
}

// Leaf mints an end-entity certificate issued by c: by default clientAuth, not a CA, CN=cn,
// valid as long as c.
func (c *Cert) Leaf(cn string, opts ...Option) *Cert {
	o := apply(append([]Option{ClientAuth(), CA(false)}, opts...))
	o.keyUsage = x509.KeyUsageDigitalSignature
	return build(cn, c, o)
}

// SelfSigned mints a self-signed end-entity certificate (for self_signed_tls_client_auth).
func SelfSigned(cn string, opts ...Option) *Cert {
	o := apply(append([]Option{ClientAuth(), CA(false)}, opts...))
	o.keyUsage = x509.KeyUsageDigitalSignature
	return build(cn, nil, o)
}

// CRL returns a DER CRL issued by c that revokes the given certificates, valid over
// [thisUpdate, nextUpdate].
func (c *Cert) CRL(thisUpdate, nextUpdate time.Time, revoked ...*Cert) []byte {
	var entries []x509.RevocationListEntry
	for _, r := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: r.Cert.SerialNumber, RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(serial.Add(1)),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, c.Cert, c.Key)
	if err != nil {
		panic(err)
	}
	return der
}

// CRLPEM is CRL as a PEM "X509 CRL" block.
func (c *Cert) CRLPEM(thisUpdate, nextUpdate time.Time, revoked ...*Cert) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.CRL(thisUpdate, nextUpdate, revoked...)})
}

// PermittedDirectoryNames adds a nameConstraints extension (RFC 5280 section 4.2.1.10) whose
// permitted subtrees are the given RFC 4514 names, as directoryName: crypto/x509 can write no
// such constraint itself.
func PermittedDirectoryNames(critical bool, names ...string) Option {
	type subtree struct{ Base asn1.RawValue }
	var trees struct {
		Permitted []subtree `asn1:"optional,tag:0"`
	}
	for _, n := range names {
		raw, err := rawSubject(n)
		if err != nil {
			panic(err)
		}
		// directoryName is [4] EXPLICIT: Name is a CHOICE.
		trees.Permitted = append(trees.Permitted, subtree{asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: raw}})
	}
	v, err := asn1.Marshal(trees)
	if err != nil {
		panic(err)
	}
	return Extension(pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 30}, Critical: critical, Value: v})
}

// RawSANExtension is a subjectAltName extension of URI and DNS names written without
// crypto/x509's validation, so tests can put hostile text (';', ',', '"', ' ') in them, as a
// self-signed client can.
func RawSANExtension(uris, dns []string) pkix.Extension {
	var names []asn1.RawValue
	for _, u := range uris {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
	}
	for _, d := range dns {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(d)})
	}
	v, err := asn1.Marshal(names)
	if err != nil {
		panic(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v}
}

// RawSANs sets the subjectAltName extension to RawSANExtension(uris, dns).
func RawSANs(uris, dns []string) Option { return Extension(RawSANExtension(uris, dns)) }
