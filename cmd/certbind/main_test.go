package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/cmd/internal/exit"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/logbuf"
	"github.com/certbind/certbind/testenv/pki"
)

type cli struct {
	dir                    string
	root, billing, reports *pki.Cert
}

func newCLI(t *testing.T) *cli {
	c := &cli{dir: t.TempDir()}
	c.root = pki.NewRoot("Root")
	c.billing = c.root.Leaf("billing", pki.Subject("CN=billing,O=Example"))
	c.reports = c.root.Leaf("reports", pki.Subject("CN=reports,O=Example"))
	c.write(t, "ca.pem", c.root.PEM())
	c.write(t, "billing.pem", append(c.billing.PEM(), c.billing.KeyPEM()...))
	c.write(t, "reports.pem", c.reports.PEM())
	c.write(t, "certbind.yaml", []byte(`trust_anchors: [ca.pem]
clients:
  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=billing,O=Example"}
routes:
  - {path_prefix: /oauth2/token, mode: client_auth}
`))
	return c
}

func (c *cli) write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *cli) path(name string) string { return filepath.Join(c.dir, name) }

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return exit.Code(err, &errb, "certbind"), out.String(), errb.String()
}

func TestCheckCommand(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		inOut string
		notIn string
	}{
		{"allow", []string{"check", "--config", c.path("certbind.yaml"), "--cert", c.path("billing.pem"), "--client-id", "billing"}, 0, "ALLOW  reason=ok  mode=client_auth  client_id=billing", "PRIVATE"},
		{"deny with reason", []string{"check", "--config", c.path("certbind.yaml"), "--cert", c.path("reports.pem"), "--client-id", "billing"}, 1, "DENY  reason=certificate_not_bound", ""},
		{"deny names the registration", []string{"check", "--config", c.path("certbind.yaml"), "--cert", c.path("reports.pem"), "--client-id", "billing"}, 1, "client billing is registered with tls_client_auth tls_client_auth_subject_dn CN=billing,O=Example", ""},
		{"identity", []string{"check", "--config", c.path("certbind.yaml"), "--cert", c.path("billing.pem")}, 0, "mode=identity  client_id=billing", ""},
		{"token without issuers", []string{"check", "--config", c.path("certbind.yaml"), "--cert", c.path("billing.pem"), "--token", "abc"}, 1, "reason=token_unverifiable", "abc"},
		{"no config", []string{"check", "--cert", c.path("billing.pem")}, 2, "", ""},
		{"help", []string{"check", "-h"}, 0, "", ""},
		{"serve help", []string{"serve", "-h"}, 0, "", ""},
		{"unknown flag", []string{"check", "--bogus"}, 2, "", ""},
		{"bad cert file", []string{"check", "--config", c.path("certbind.yaml"), "--cert", c.path("certbind.yaml")}, 2, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.inOut) || (tc.notIn != "" && strings.Contains(out+errs, tc.notIn)) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
		})
	}
}

func TestThumbprintCommand(t *testing.T) {
	c := newCLI(t)
	code, out, _ := runCLI("thumbprint", c.path("billing.pem"))
	tp := policy.ThumbprintOf(c.billing.DER())
	if code != 0 || out != "x5t#S256  "+tp.String()+"\nsha256    "+tp.Hex()+"\n" {
		t.Fatalf("exit %d: %q", code, out)
	}
	if code, _, _ := runCLI("thumbprint", c.path("certbind.yaml")); code != 2 {
		t.Errorf("not a certificate: exit %d", code)
	}
}

func TestValidateCommand(t *testing.T) {
	c := newCLI(t)
	if code, out, errs := runCLI("validate", "--config", c.path("certbind.yaml")); code != 0 || !strings.Contains(out, "valid (1 clients, 1 trust anchors)") {
		t.Fatalf("exit %d %s %s", code, out, errs)
	}
	c.write(t, "bad.yaml", []byte("clients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: CN=a, tls_client_auth_san_dns: a}\n"))
	code, _, errs := runCLI("validate", "--config", c.path("bad.yaml"))
	if code != 2 || !strings.Contains(errs, "clients[0]: tls_client_auth needs exactly one of") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// A trailing-slash prefix whose bare path falls to a broader route: valid, with a warning.
	c.write(t, "shadow.yaml", []byte("routes:\n  - {path_prefix: /api/admin/, mode: identity}\n  - {path_prefix: /api/, mode: identity}\n"))
	code, out, errs := runCLI("validate", "--config", c.path("shadow.yaml"))
	if code != 0 || !strings.Contains(out, `shadow.yaml: warning: routes[0].path_prefix: "/api/admin/" does not cover "/api/admin", which falls to routes[1]`) {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if code, _, _ := runCLI("nonsense"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// TestServeAnswersAndStops: serve answers a Check and returns once its context ends (draining
// checks in flight is TestServeDrainsInFlightChecks).
func TestServeAnswersAndStops(t *testing.T) {
	c := newCLI(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs logbuf.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", c.path("certbind.yaml"), "--grpc-addr", addr}, &bytes.Buffer{}, &logs)
	}()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Certificate: envoyxfcc.EncodePEM(c.billing.PEM())},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Path: "/oauth2/token", Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"}, Body: "client_id=billing",
		}},
	}}
	var resp *authv3.CheckResponse
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = client.Check(context.Background(), req, grpc.WaitForReady(false)); err == nil {
			break
		}
	}
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("Check: %v %v", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	c := newCLI(t)
	c.write(t, "bad.yaml", []byte("nope: 1\n"))
	code, _, errs := runCLI("serve", "--config", c.path("bad.yaml"), "--grpc-addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errs, "nope: unknown key") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestValidateEnvoy(t *testing.T) {
	c := newCLI(t)
	code, out, errs := runCLI("validate", "--envoy", "../../envoy/envoy.yaml")
	if code != 0 || !strings.Contains(out, "valid Envoy bootstrap; 0 warnings") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	data, err := os.ReadFile("../../envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"forward only":      {"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: FORWARD_ONLY", "FORWARD_ONLY"},
		"fail open":         {"failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow"},
		"not a proto field": {"failure_mode_allow: false", "failure_mode_allo: false", "failure_mode_allo"},
	} {
		t.Run(name, func(t *testing.T) {
			broken := strings.Replace(string(data), tc.from, tc.to, 1)
			if broken == string(data) {
				t.Fatalf("%q not in envoy.yaml", tc.from)
			}
			c.write(t, "envoy.yaml", []byte(broken))
			code, out, errs := runCLI("validate", "--envoy", c.path("envoy.yaml"))
			if code != 2 || !strings.Contains(out+errs, tc.want) {
				t.Fatalf("exit %d\n%s%s", code, out, errs)
			}
		})
	}
	// certbind set to take the last element while Envoy replaces XFCC: a warning, not an error.
	c.write(t, "last.yaml", []byte("xfcc: {elements: last}\n"))
	code, out, _ = runCLI("validate", "--config", c.path("last.yaml"), "--envoy", "../../envoy/envoy.yaml")
	if code != 0 || !strings.Contains(out, "warning") {
		t.Fatalf("exit %d: %s", code, out)
	}
}
