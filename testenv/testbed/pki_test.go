package testbed_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/jwks"
	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/testbed"
)

// bed is a generated PKI next to a copy of this directory's certbind.yaml, as the test bed
// lays them out.
type bed struct {
	dir, pki string
	now      time.Time
	engine   *policy.Engine
}

func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{dir: t.TempDir(), now: time.Now()}
	b.pki = filepath.Join(b.dir, "pki")
	if err := testbed.GeneratePKI(b.pki, b.now, 24*time.Hour); err != nil {
		t.Fatalf("GeneratePKI: %v", err)
	}
	yaml, err := os.ReadFile("certbind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(b.dir, "certbind.yaml")
	if err := os.WriteFile(cfgPath, yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.LoadConfig(cfgPath, policy.LoadOptions{})
	if err != nil {
		t.Fatalf("certbind.yaml does not load with the generated PKI: %v", err)
	}
	b.engine = policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return b.now.Add(time.Minute) }})
	return b
}

func (b *bed) read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.pki, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// chain reads a NAME.pem: every block a CERTIFICATE, leaf first.
func (b *bed) chain(t *testing.T, name string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := b.read(t, name)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("%s: PEM block %q", name, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("%s: %d certificates, %d bytes left over", name, len(certs), len(rest))
	}
	return certs
}

func (b *bed) presented(t *testing.T, name string) *policy.Presented {
	t.Helper()
	certs := b.chain(t, testbed.CertFile(name))
	var inter [][]byte
	for _, c := range certs[1:] {
		inter = append(inter, c.Raw)
	}
	p, err := policy.ParsePresented(certs[0].Raw, inter)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *bed) pool(t *testing.T, name string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range b.chain(t, name) {
		pool.AddCert(c)
	}
	return pool
}

func TestFilesAndModes(t *testing.T) {
	b := newBed(t)
	entries, err := os.ReadDir(b.pki)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{".gitignore": false}
	for _, f := range testbed.Files() {
		want[f.Name] = f.Private
	}
	if len(entries) != len(want) {
		t.Errorf("%d files in the PKI directory, want %d (no temporary files left)", len(entries), len(want))
	}
	for _, e := range entries {
		private, ok := want[e.Name()]
		if !ok {
			t.Errorf("unexpected file %s", e.Name())
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o644)
		if private {
			wantMode = 0o600
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", e.Name(), info.Mode().Perm(), wantMode)
		}
		data := b.read(t, e.Name())
		if hasKey := strings.Contains(string(data), "PRIVATE KEY"); hasKey != private {
			t.Errorf("%s: holds a private key: %v, want %v", e.Name(), hasKey, private)
		}
	}
	if ignore := string(b.read(t, ".gitignore")); !strings.Contains(ignore, "\n*\n") {
		t.Errorf(".gitignore %q does not ignore everything", ignore)
	}
	// A second run replaces everything in place (fresh keys, same modes).
	before := b.read(t, testbed.FileCA)
	if err := testbed.GeneratePKI(b.pki, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if string(before) == string(b.read(t, testbed.FileCA)) {
		t.Error("second GeneratePKI did not replace ca.pem")
	}
	if info, _ := os.Stat(filepath.Join(b.pki, testbed.FileASKey)); info.Mode().Perm() != 0o600 {
		t.Errorf("regenerated key mode %v", info.Mode().Perm())
	}
}

func TestGeneratePKIRejectsValidity(t *testing.T) {
	for _, v := range []time.Duration{0, -time.Hour} {
		if err := testbed.GeneratePKI(t.TempDir(), time.Now(), v); err == nil {
			t.Errorf("validity %s accepted", v)
		}
	}
}

// TestClientAuth: every registered client authenticates with its certificate through the
// policy engine and certbind.yaml; untrusted and expired are refused with their reasons.
func TestClientAuth(t *testing.T) {
	b := newBed(t)
	for _, tc := range []struct {
		cert, clientID string
		want           policy.Reason
	}{
		{testbed.Billing, "billing", policy.ReasonOK},
		{testbed.Reports, "reports", policy.ReasonOK},
		{testbed.Inventory, "inventory", policy.ReasonOK},
		{testbed.Partner, "partner", policy.ReasonOK},
		{testbed.Untrusted, "billing", policy.ReasonCertificateUntrusted},
		{testbed.Expired, "billing", policy.ReasonCertificateExpired},
		{testbed.Reports, "billing", policy.ReasonCertificateUnbound},
		{testbed.Billing, "partner", policy.ReasonCertificateUnbound},
	} {
		d := b.engine.Decide(context.Background(), policy.Input{
			ModeHint: string(policy.ModeClientAuth),
			Request: policy.Request{Method: "POST", Path: "/oauth2/token",
				Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"},
				Body:    []byte("grant_type=client_credentials&client_id=" + tc.clientID)},
			Certificate: b.presented(t, tc.cert),
		})
		if d.Reason != tc.want || (tc.want == policy.ReasonOK && d.ClientID != tc.clientID) {
			t.Errorf("%s as %s: %s %q (%v), want %s", tc.cert, tc.clientID, d.Reason, d.ClientID, d.Cause, tc.want)
		}
	}
}

// TestIdentity: each client certificate maps to exactly its client on identity routes.
func TestIdentity(t *testing.T) {
	b := newBed(t)
	for _, name := range []string{testbed.Billing, testbed.Reports, testbed.Inventory, testbed.Partner} {
		d := b.engine.Decide(context.Background(), policy.Input{
			Request:     policy.Request{Method: "GET", Path: "/internal/status", Headers: map[string]string{}},
			Certificate: b.presented(t, name),
		})
		if !d.Allow || d.ClientID != name {
			t.Errorf("%s: %s %q (%v)", name, d.Reason, d.ClientID, d.Cause)
		}
	}
}

// TestBoundTokenEndToEnd: the demo authorization server, run with the generated signing key
// and the defaults of cmd/testbed, issues tokens that certbind.yaml accepts on /api/ with the
// certificate they were issued for, and refuses with another.
func TestBoundTokenEndToEnd(t *testing.T) {
	b := newBed(t)
	key, err := testbed.LoadSigningKey(filepath.Join(b.pki, testbed.FileASKey))
	if err != nil {
		t.Fatal(err)
	}
	as := demoapp.NewAS(demoapp.ASConfig{Issuer: testbed.Issuer, Audience: testbed.Audience, Key: key, KeyID: testbed.ASKeyID})
	billing := b.presented(t, testbed.Billing)

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read admin"}}
	r := httptest.NewRequest(http.MethodPost, demoapp.PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(demoapp.HeaderClientID, testbed.Billing)
	r.Header.Set(demoapp.HeaderClientCert, ":"+base64.StdEncoding.EncodeToString(billing.Leaf.Raw)+":")
	w := httptest.NewRecorder()
	as.ServeHTTP(w, r)
	var tok demoapp.TokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || w.Code != 200 {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}

	api := func(path string, cert *policy.Presented) policy.Decision {
		return b.engine.Decide(context.Background(), policy.Input{
			Request: policy.Request{Method: "GET", Path: path,
				Headers: map[string]string{"authorization": "Bearer " + tok.AccessToken}},
			Certificate: cert,
		})
	}
	if d := api("/api/orders", billing); !d.Allow || d.ClientID != testbed.Billing {
		t.Errorf("bound token with its certificate: %s (%v)", d.Reason, d.Cause)
	}
	if d := api("/api/admin/users", billing); !d.Allow {
		t.Errorf("admin scope: %s (%v)", d.Reason, d.Cause)
	}
	if d := api("/api/orders", b.presented(t, testbed.Reports)); d.Reason != policy.ReasonTokenBindingMismatch {
		t.Errorf("bound token with another certificate: %s, want %s", d.Reason, policy.ReasonTokenBindingMismatch)
	}
	if d := api("/api/orders", nil); d.Reason != policy.ReasonTokenCertMissing {
		t.Errorf("bound token without certificate: %s, want %s", d.Reason, policy.ReasonTokenCertMissing)
	}
}

func TestKeyPairs(t *testing.T) {
	b := newBed(t)
	names := [][2]string{
		{testbed.FileEnvoyCert, testbed.FileEnvoyKey},
		{testbed.FileEnvoyClientCert, testbed.FileEnvoyClientKey},
		{testbed.FileCertbindCert, testbed.FileCertbindKey},
	}
	for _, c := range testbed.Clients() {
		names = append(names, [2]string{testbed.CertFile(c), testbed.KeyFile(c)})
	}
	for _, n := range names {
		pair, err := tls.LoadX509KeyPair(filepath.Join(b.pki, n[0]), filepath.Join(b.pki, n[1]))
		if err != nil {
			t.Errorf("%s / %s: %v", n[0], n[1], err)
			continue
		}
		if _, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok {
			t.Errorf("%s: %T, want ECDSA", n[1], pair.PrivateKey)
		}
	}
}

func TestServerAndEnvoyCertificates(t *testing.T) {
	b := newBed(t)
	roots := b.pool(t, testbed.FileCA)
	verify := func(file string, usage x509.ExtKeyUsage, name string) error {
		chain := b.chain(t, file)
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: b.now})
		return err
	}
	for _, tc := range []struct {
		file  string
		usage x509.ExtKeyUsage
		names []string
	}{
		{testbed.FileEnvoyCert, x509.ExtKeyUsageServerAuth, []string{"envoy", "localhost", "127.0.0.1", "::1"}},
		{testbed.FileCertbindCert, x509.ExtKeyUsageServerAuth, []string{"certbind", "localhost", "127.0.0.1"}},
		{testbed.FileEnvoyClientCert, x509.ExtKeyUsageClientAuth, []string{"envoy"}},
	} {
		for _, name := range tc.names {
			if err := verify(tc.file, tc.usage, name); err != nil {
				t.Errorf("%s for %s: %v", tc.file, name, err)
			}
		}
		if err := verify(tc.file, tc.usage, "example.org"); err == nil {
			t.Errorf("%s verifies for example.org", tc.file)
		}
	}
	// Server certificates are not client certificates and vice versa.
	if err := verify(testbed.FileCertbindCert, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("certbind.pem verifies as a client certificate")
	}
	if err := verify(testbed.FileEnvoyClientCert, x509.ExtKeyUsageServerAuth, ""); err == nil {
		t.Error("envoy-client.pem verifies as a server certificate")
	}
	ec := b.chain(t, testbed.FileEnvoyClientCert)[0]
	if len(ec.URIs) != 1 || ec.URIs[0].String() != testbed.EnvoySPIFFEID {
		t.Errorf("envoy-client URI SANs %v", ec.URIs)
	}
	// The untrusted root is nowhere: untrusted.pem is its leaf alone.
	if n := len(b.chain(t, testbed.CertFile(testbed.Untrusted))); n != 1 {
		t.Errorf("untrusted.pem holds %d certificates", n)
	}
	if c := b.chain(t, testbed.FileCA)[0]; c.Subject.CommonName != "certbind test root" || !c.IsCA {
		t.Errorf("ca.pem: %s CA %v", c.Subject, c.IsCA)
	}
}

// TestMutualTLS: Envoy's client certificate and certbind's server certificate complete a
// mutual TLS handshake, each verifying the other against ca.pem.
func TestMutualTLS(t *testing.T) {
	b := newBed(t)
	roots := b.pool(t, testbed.FileCA)
	load := func(cert, key string) tls.Certificate {
		pair, err := tls.LoadX509KeyPair(filepath.Join(b.pki, cert), filepath.Join(b.pki, key))
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	cConn, sConn := net.Pipe()
	server := tls.Server(sConn, &tls.Config{Certificates: []tls.Certificate{load(testbed.FileCertbindCert, testbed.FileCertbindKey)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots, MinVersion: tls.VersionTLS13})
	client := tls.Client(cConn, &tls.Config{Certificates: []tls.Certificate{load(testbed.FileEnvoyClientCert, testbed.FileEnvoyClientKey)},
		RootCAs: roots, ServerName: "certbind", MinVersion: tls.VersionTLS13})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if got := server.ConnectionState().PeerCertificates[0].URIs[0].String(); got != testbed.EnvoySPIFFEID {
		t.Errorf("server saw client %s", got)
	}
	client.Close()
	server.Close()
}

func TestJWKSFiles(t *testing.T) {
	b := newBed(t)
	partner, err := jwks.Parse(b.read(t, testbed.FilePartnerJWKS))
	if err != nil {
		t.Fatal(err)
	}
	leaf := b.chain(t, testbed.CertFile(testbed.Partner))[0]
	if keys := partner.ByKID(testbed.Partner); len(keys) != 1 {
		t.Errorf("partner.jwks.json: %d keys with kid partner", len(keys))
	}
	if _, ok := partner.Pinned(policy.ThumbprintOf(leaf.Raw)); !ok {
		t.Error("partner.jwks.json does not pin partner.pem")
	}
	as, err := jwks.Parse(b.read(t, testbed.FileASJWKS))
	if err != nil {
		t.Fatal(err)
	}
	keys := as.ByKID(testbed.ASKeyID)
	if len(keys) != 1 || keys[0].Algorithm != "ES256" || keys[0].Use != "sig" {
		t.Fatalf("as.jwks.json: %+v", as.Keys())
	}
	priv, err := testbed.LoadSigningKey(filepath.Join(b.pki, testbed.FileASKey))
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(keys[0].Key) {
		t.Error("as.jwks.json does not publish as-signing-key.pem's public key")
	}
}

func TestLoadSigningKeyRejects(t *testing.T) {
	b := newBed(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	key := b.read(t, testbed.FileASKey)
	for name, data := range map[string][]byte{
		"empty":       nil,
		"certificate": b.read(t, testbed.FileCA),
		"two keys":    append(append([]byte{}, key...), key...),
		"garbage":     []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
	} {
		if _, err := testbed.LoadSigningKey(write(name, data)); !errors.Is(err, testbed.ErrNotSigningKey) {
			t.Errorf("%s: %v, want ErrNotSigningKey", name, err)
		}
	}
	if _, err := testbed.LoadSigningKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
