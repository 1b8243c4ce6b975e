package stack_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/stack"
	"github.com/certbind/certbind/testenv/testbed"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStackRunsTheServerAssembly: the stack's certbind is certbind serve's: the admin
// listener reports readiness and counts the decisions the proxies asked for, the HTTP endpoint
// runs behind the same caller allow-list as gRPC, and a restart keeps the addresses.
func TestStackRunsTheServerAssembly(t *testing.T) {
	s, err := stack.Start(stack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, _ := get(t, http.DefaultClient, s.AdminURL+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	inventory, err := s.Client(testbed.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, inventory, s.FrontURL+"/internal/stock"); code != 200 {
		t.Fatalf("through the proxy: %d %s", code, body)
	}
	if _, metrics := get(t, http.DefaultClient, s.AdminURL+"/metrics"); !strings.Contains(metrics, `certbind_decisions_total{mode="identity",reason="ok",result="allow"} 1`) {
		t.Errorf("/metrics does not count the decision:\n%s", metrics)
	}

	// The HTTP endpoint: Envoy's client certificate is answered, another is refused.
	roots := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(s.PKI, testbed.FileCA))
	roots.AppendCertsFromPEM(ca)
	endpoint := func(certFile, keyFile string) (*http.Response, error) {
		cert, err := tls.LoadX509KeyPair(filepath.Join(s.PKI, certFile), filepath.Join(s.PKI, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: "certbind", Certificates: []tls.Certificate{cert}}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + s.HTTPAddr + "/internal/stock")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := endpoint(testbed.FileEnvoyClientCert, testbed.FileEnvoyClientKey); err != nil || resp.StatusCode != 403 {
		t.Errorf("Envoy at the HTTP endpoint, no client certificate forwarded: %v %v, want a 403 (identity needs one)", resp, err)
	}
	if _, err := endpoint(testbed.CertFile(testbed.Billing), testbed.KeyFile(testbed.Billing)); err == nil {
		t.Error("a client certificate other than Envoy's was answered at the HTTP endpoint")
	}

	grpcAddr := s.GRPCAddr
	if err := s.RestartCertbind(); err != nil {
		t.Fatal(err)
	}
	if s.GRPCAddr != grpcAddr {
		t.Errorf("gRPC moved from %s to %s", grpcAddr, s.GRPCAddr)
	}
	var code int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, _ = get(t, inventory, s.FrontURL+"/internal/stock"); code == 200 {
			break
		}
	}
	if code != 200 {
		t.Fatalf("after a restart: %d", code)
	}
}
