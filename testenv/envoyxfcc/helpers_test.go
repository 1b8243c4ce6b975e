package envoyxfcc

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envoyVectors holds the headers and certificates of Envoy's own tests. They live with the
// parser, whose tests read them as real headers; this package's tests reproduce them.
var envoyVectors = filepath.Join("..", "..", "extauthz", "xfcc", "testdata")

// readVector reads a file of envoyVectors.
func readVector(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(envoyVectors, name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// integrationCases reads Envoy's integration tests (vectors B).
func integrationCases(tb testing.TB) []IntegrationCase {
	tb.Helper()
	cases, err := ParseIntegrationCases(readVector(tb, "envoy-integration.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(cases) != 22 {
		tb.Fatalf("read %d cases, want 22", len(cases))
	}
	return cases
}

// vectorCert reads a PEM certificate of envoyVectors.
func vectorCert(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	return parseCert(tb, name, readVector(tb, name))
}

// testdataCert reads a PEM certificate under testdata.
func testdataCert(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return parseCert(tb, name, string(b))
}

func parseCert(tb testing.TB, name, text string) *x509.Certificate {
	tb.Helper()
	block, rest := pem.Decode([]byte(text))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		tb.Fatalf("%s: not one PEM block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return c
}

// pemOf is the plain PEM text of DER.
func pemOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// certValue is a certificate as Envoy writes it in Cert (without the quotes).
func certValue(c *x509.Certificate) string { return EncodePEM([]byte(pemOf(c.Raw))) }

// hashPair is the Hash pair Envoy writes for c.
func hashPair(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "Hash=" + hex.EncodeToString(sum[:])
}
