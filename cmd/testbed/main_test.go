package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/cmd/internal/exit"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/logbuf"
	"github.com/certbind/certbind/testenv/testbed"
)

// jsonLines asserts every log line is a JSON object and returns them.
func jsonLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		lines = append(lines, m)
	}
	return lines
}

func TestPKICommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var stdout, stderr bytes.Buffer
	before := time.Now()
	if err := run(context.Background(), []string{"pki", "--out", dir, "--valid", "2h"}, &stdout, &stderr); err != nil {
		t.Fatalf("pki: %v\n%s", err, stderr.String())
	}
	for _, f := range testbed.Files() {
		if _, err := os.Stat(filepath.Join(dir, f.Name)); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, testbed.FileCA))
	block, _ := pem.Decode(data)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if d := ca.NotAfter.Sub(before); d < 2*time.Hour-2*time.Second || d > 2*time.Hour+time.Minute {
		t.Errorf("--valid 2h: CA valid for %s from now", d)
	}
	lines := jsonLines(t, stderr.String())
	if len(lines) != 1 || lines[0]["dir"] != dir || lines[0]["level"] != "info" {
		t.Errorf("log: %s", stderr.String())
	}
}

func TestUsage(t *testing.T) {
	pkiDir := t.TempDir()
	if err := testbed.GeneratePKI(pkiDir, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"pki"}, 2, "--out is required"},
		{[]string{"pki", "--out", t.TempDir(), "--valid", "-1h"}, 2, "must be positive"},
		{[]string{"pki", "--out", t.TempDir(), "--valid", "soon"}, 2, "invalid value"},
		{[]string{"pki", "--out", t.TempDir(), "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"pki", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"as"}, 2, "--pki is required"},
		{[]string{"as", "--pki", pkiDir, "--issuer", "https://as.example/tenant"}, 2, "issuer:"},
		{[]string{"as", "--pki", pkiDir, "--token-ttl", "0s"}, 2, "--token-ttl 0s: must be positive"},
		{[]string{"as", "--pki", pkiDir, "--token-ttl", "1500ms"}, 2, "token_ttl:"},
		{[]string{"as", "--pki", t.TempDir()}, 1, testbed.FileASKey},
		{[]string{"api", "--addr", "127.0.0.1:notaport"}, 1, "notaport"},
		{[]string{"api", "x"}, 2, `unexpected argument "x"`},
	} {
		var stdout, stderr bytes.Buffer
		e := newEnv(&stdout, &stderr)
		e.listen = func(addr string) (net.Listener, error) {
			if !strings.Contains(addr, "notaport") {
				t.Errorf("%q: listens on %s", tc.args, addr)
				return nil, errors.New("test: must not listen")
			}
			return net.Listen("tcp", addr)
		}
		err := runEnv(context.Background(), e, tc.args)
		code := exit.Code(err, &stderr, "testbed")
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "testbed pki") {
			t.Errorf("%q: %v, stdout %q", args, err, stdout.String())
		}
	}
	for name, flag := range map[string]string{"pki": "-valid", "as": "-issuer", "api": "-addr"} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{name, "-h"}, &stdout, &stderr); err != nil || !strings.Contains(stderr.String(), flag) {
			t.Errorf("%s -h: %v, stderr %q", name, err, stderr.String())
		}
	}
}

// server runs a server subcommand in the background on 127.0.0.1:0 and returns its base URL
// and a stop function that cancels it (as SIGTERM does) and returns run's error.
func server(t *testing.T, args ...string) (string, func() error, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	e := newEnv(io.Discard, logs)
	ready := make(chan net.Addr, 1)
	e.ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEnv(ctx, e, append(args, "--addr", "127.0.0.1:0")) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("%q exited before serving: %v\n%s", args, err, logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("%q: not serving after 10s", args)
	}
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("did not shut down")
		}
	}
	t.Cleanup(func() { cancel() })
	return "http://" + addr.String(), stop, logs
}

func TestASCommand(t *testing.T) {
	dir := t.TempDir()
	if err := testbed.GeneratePKI(dir, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	base, stop, logs := server(t, "as", "--pki", dir, "--issuer", "https://as.example", "--token-ttl", "90s")

	resp, err := http.Get(base + demoapp.PathMetadata)
	if err != nil {
		t.Fatal(err)
	}
	var md demoapp.Metadata
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md.Issuer != "https://as.example" || md.TokenEndpoint != "https://as.example/oauth2/token" || !md.TLSClientCertBoundTokens {
		t.Errorf("metadata %+v", md)
	}

	// A token for billing, as Envoy forwards the request after certbind's client_auth allow.
	certPEM, _ := os.ReadFile(filepath.Join(dir, testbed.CertFile(testbed.Billing)))
	block, _ := pem.Decode(certPEM)
	req, _ := http.NewRequest(http.MethodPost, base+demoapp.PathToken,
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(demoapp.HeaderClientID, "billing")
	req.Header.Set(demoapp.HeaderClientCert, ":"+base64.StdEncoding.EncodeToString(block.Bytes)+":")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok demoapp.TokenResponse
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.ExpiresIn != 90 || tok.Scope != "read" {
		t.Fatalf("token: %d %+v", resp.StatusCode, tok)
	}

	// The token verifies with the JWK Set the server publishes, which is the one in the PKI.
	jwksJSON, _ := os.ReadFile(filepath.Join(dir, testbed.FileASJWKS))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksJSON, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in %s", jws.Signatures[0].Header.KeyID, testbed.FileASJWKS)
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		t.Errorf("token does not verify with %s: %v", testbed.FileASJWKS, err)
	}

	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	out := logs.String()
	lines := jsonLines(t, out)
	msgs := map[string]bool{}
	for _, l := range lines {
		msgs[l["msg"].(string)] = true
		if l["service"] != "as" {
			t.Errorf("log line without service=as: %v", l)
		}
	}
	for _, m := range []string{"serving", "access token issued", "request", "shutting down: finishing in-flight requests"} {
		if !msgs[m] {
			t.Errorf("no %q log line in\n%s", m, out)
		}
	}
	if strings.Contains(out, tok.AccessToken[:30]) || strings.Contains(out, "BEGIN") {
		t.Error("log holds the token or a certificate")
	}
}

func TestAPICommand(t *testing.T) {
	base, stop, logs := server(t, "api")
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/orders?access_token=secret", nil)
	req.Header.Set(demoapp.HeaderClientID, "reports")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var echo demoapp.Echo
	json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if echo.Path != "/api/orders?access_token=secret" || echo.Headers[demoapp.HeaderClientID] != "reports" {
		t.Errorf("echo %+v", echo)
	}
	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
	out := logs.String()
	var sawRequest bool
	for _, l := range jsonLines(t, out) {
		if l["msg"] == "request" && l["path"] == "/api/orders" {
			sawRequest = l["client_id"] == "reports" && l["status"] == float64(200)
		}
	}
	if !sawRequest || strings.Contains(out, "secret") {
		t.Errorf("access log (want the request without its query):\n%s", out)
	}
}

// TestGracefulShutdown: a request in flight when the signal arrives is answered.
func TestGracefulShutdown(t *testing.T) {
	logs := &logbuf.Buffer{}
	e := newEnv(io.Discard, logs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.listen = func(string) (net.Listener, error) { return lis, nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write([]byte("done"))
	})
	done := make(chan error, 1)
	go func() { done <- serve(ctx, e, e.log.WithField("service", "test"), "ignored", slow) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + lis.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	// Shutdown has begun once serve says so; only then does "not returned yet" mean anything.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "shutting down: finishing in-flight requests"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start shutting down:\n%s", logs.String())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned with a request in flight: %v", err)
	default:
	}
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request: %q", body)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
