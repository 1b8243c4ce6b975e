package xfcc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/pki"
)

// testNow is the fixed clock of the test PKI: no certificate here expires while tests run.
var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// certOpts describes a test certificate.
type certOpts struct {
	cn         string   // used when rawSubject is nil
	rawSubject []byte   // DER Name, overrides cn
	uris       []string // URI SANs, written raw
	dns        []string // DNS SANs, written raw
	ca         bool
}

var (
	testKeyOnce sync.Once
	testKey     *ecdsa.PrivateKey
	testSerial  atomic.Int64
)

// key returns one P-256 key shared by every test certificate: tests here never verify
// signatures, and key generation would dominate fuzzing.
func key(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	testKeyOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// newCert issues a certificate for o, signed by parent (self-signed when parent is nil).
func newCert(tb testing.TB, o certOpts, parent *x509.Certificate) *x509.Certificate {
	tb.Helper()
	k := key(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(testSerial.Add(1)),
		Subject:               pkix.Name{CommonName: o.cn},
		RawSubject:            o.rawSubject,
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: o.ca,
		IsCA:                  o.ca,
	}
	if len(o.uris)+len(o.dns) > 0 {
		tmpl.ExtraExtensions = []pkix.Extension{pki.RawSANExtension(o.uris, o.dns)}
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, k)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parse certificate: %v", err)
	}
	return c
}

// integrationCases reads Envoy's integration tests (vectors B).
func integrationCases(tb testing.TB) []envoyxfcc.IntegrationCase {
	tb.Helper()
	cases, err := envoyxfcc.ParseIntegrationCases(readFile(tb, "envoy-integration.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(cases) != 22 {
		tb.Fatalf("read %d cases, want 22", len(cases))
	}
	return cases
}

func readFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// loadCert reads a PEM certificate from testdata.
func loadCert(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	block, rest := pem.Decode([]byte(readFile(tb, name)))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		tb.Fatalf("%s: not one PEM block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return c
}

// certValue is a certificate as Envoy writes it in Cert (without the quotes).
func certValue(c *x509.Certificate) string { return envoyxfcc.EncodePEM([]byte(pemOf(c.Raw))) }

// pemOf is the plain PEM text of DER, for building hostile values.
func pemOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// escapePEM percent-encodes arbitrary text the way url.PathEscape does (for hostile rows
// that want something other than Envoy's exact encoding).
func escapePEM(s string) string { return url.PathEscape(s) }
