package nginx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/testbed"
)

func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed: .ci/run must install it (apt-get install nginx-light)")
	}
	t.Skip("nginx not installed")
	return ""
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nginxCertbindConfig is the test bed's certbind.yaml plus what the nginx example asks for.
const nginxCertbindConfig = `intermediates: [pki/intermediate.pem]
http_authz:
  certificate_format: pem_urlencoded
  certificate_header: x-ssl-client-cert
  mode_header: x-certbind-mode
  original_uri_header: x-original-uri
  original_method_header: x-original-method
  auth_request_statuses: true
`

// nginxHostRoute: every path of one virtual host needs scope admin.
const nginxHostRoute = "  - { host: admin.certbind.test, path_prefix: /, mode: bound_token, scopes: [admin] }\n"

type rig struct {
	base string
	// selfBase is the server for self_signed_tls_client_auth clients (ssl_verify_client
	// optional_no_ca).
	selfBase string
	pki      string
	roots    *x509.CertPool
	clients  map[string]*http.Client
}

func start(t *testing.T) *rig {
	bin := nginxBinary(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := testbed.GeneratePKI(pki, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "certbind.yaml")
	base := strings.Replace(string(testbed.Config), "\nroutes:\n", "\nroutes:\n"+nginxHostRoute, 1)
	if base == string(testbed.Config) {
		t.Fatal("the test bed's certbind.yaml has no routes: to add the host route to")
	}
	if err := os.WriteFile(cfgPath, []byte(base+nginxCertbindConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.LoadConfig(cfgPath, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	authz := serve(t, extauthz.NewHTTPHandler(extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: cfg})})))
	key, err := testbed.LoadSigningKey(filepath.Join(pki, testbed.FileASKey))
	if err != nil {
		t.Fatal(err)
	}
	as := serve(t, demoapp.NewAS(demoapp.ASConfig{Issuer: testbed.Issuer, Audience: testbed.Audience, Key: key, KeyID: testbed.ASKeyID}))
	api := serve(t, demoapp.NewAPI())
	listen := freePort(t)

	// The shipped configuration, pointed at this rig: addresses and paths only.
	shipped, err := os.ReadFile("../../deploy/nginx/certbind.conf")
	if err != nil {
		t.Fatal(err)
	}
	headers := filepath.Join(dir, "certbind-upstream-headers.conf")
	if err := copyFile("../../deploy/nginx/certbind-upstream-headers.conf", headers); err != nil {
		t.Fatal(err)
	}
	listenSelf := freePort(t)
	locationsPath := filepath.Join(dir, "certbind-locations.conf")
	rewrite := strings.NewReplacer(
		"server certbind:9192;", "server "+authz+";",
		"server as:8080;", "server "+as+";",
		"server api:8080;", "server "+api+";",
		"listen 8443 ssl;", "listen "+listen+" ssl;",
		"listen 8444 ssl;", "listen "+listenSelf+" ssl;",
		"/etc/certbind/pki", pki,
		"/etc/nginx/certbind-upstream-headers.conf", headers,
		"/etc/nginx/certbind-locations.conf", locationsPath,
	)
	conf := rewrite.Replace(string(shipped))
	for _, must := range []string{authz, as, api, listen, listenSelf, pki, locationsPath} {
		if !strings.Contains(conf, must) {
			t.Fatalf("the shipped nginx config changed shape: %q not substituted", must)
		}
	}
	locations, err := os.ReadFile("../../deploy/nginx/certbind-locations.conf")
	if err != nil {
		t.Fatal(err)
	}
	if l := rewrite.Replace(string(locations)); !strings.Contains(l, headers) {
		t.Fatalf("the shipped nginx locations changed shape: %q not substituted", headers)
	} else {
		os.WriteFile(locationsPath, []byte(l), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "certbind.conf"), []byte(conf), 0o644)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers must read this test's private temp directory
	}
	main := fmt.Sprintf(`%sworker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/certbind.conf;
}
`, user, dir)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output: %s\nerror.log:\n%s", out, logs)
		}
	})
	r := &rig{base: "https://" + listen, selfBase: "https://" + listenSelf, pki: pki, roots: x509.NewCertPool(), clients: map[string]*http.Client{}}
	ca, _ := os.ReadFile(filepath.Join(pki, testbed.FileCA))
	r.roots.AppendCertsFromPEM(ca)
	for _, name := range testbed.Clients() {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki, testbed.CertFile(name)), filepath.Join(pki, testbed.KeyFile(name)))
		if err != nil {
			t.Fatal(err)
		}
		r.clients[name] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: r.roots, ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		}}}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := r.clients[testbed.Billing].Get(r.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not come up: %v\n%s", err, out)
		}
	}
	return r
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// token gets an access token for the named client (its client_id is its name) from the server
// at base: client_credentials, client_id in the query (auth_request forwards no body).
func (r *rig) token(t *testing.T, base, client string) string {
	t.Helper()
	tok := r.doAt(t, base, client, "POST", "/oauth2/token?client_id="+client, "", nil)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(tok.body), &tr); tok.status != 200 || err != nil || tr.AccessToken == "" {
		t.Fatalf("token for %s: %d %s", client, tok.status, tok.body)
	}
	return tr.AccessToken
}

type result struct {
	status int
	body   string
	hdr    http.Header
}

func (r *rig) do(t *testing.T, cert, method, path, authz string, hdr map[string]string) result {
	t.Helper()
	return r.doAt(t, r.base, cert, method, path, authz, hdr)
}

// doAt sends the request to the server at base.
func (r *rig) doAt(t *testing.T, base, cert, method, path, authz string, hdr map[string]string) result {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("grant_type=client_credentials&scope=read")
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, base+path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := r.clients[cert].Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b), resp.Header}
}

func TestNginxAuthRequest(t *testing.T) {
	r := start(t)
	// client_auth: nginx's auth_request carries no body, so client_id travels in the query.
	bearer := "Bearer " + r.token(t, r.base, testbed.Billing)

	for _, tc := range []struct {
		name, cert, method, path, authz string
		hdr                             map[string]string
		status                          int
		body, reason                    string
	}{
		{"bound token with its certificate", testbed.Billing, "GET", "/api/orders", bearer, nil, 200, `"x-certbind-subject":"billing"`, ""},
		{"token replayed with another certificate", testbed.Reports, "GET", "/api/orders", bearer, nil, 401, `"error":"invalid_token"`, "token_binding_mismatch"},
		{"no token", testbed.Billing, "GET", "/api/orders", "", nil, 401, "", "token_missing"},
		{"another client's client_id", testbed.Reports, "POST", "/oauth2/token?client_id=billing", "", nil, 401, `"error":"invalid_client"`, "certificate_not_bound"},
		{"client_id only in the body is invisible to auth_request", testbed.Billing, "POST", "/oauth2/token", "", nil, 403, `"error":"invalid_request"`, "client_id_missing"},
		{"forged client certificate header is overwritten", testbed.Reports, "POST", "/oauth2/token?client_id=billing", "",
			map[string]string{"X-SSL-Client-Cert": "garbage", "X-Certbind-Mode": "identity"}, 401, `"error":"invalid_client"`, "certificate_not_bound"},
		{"identity route", testbed.Inventory, "GET", "/internal/stock", "", map[string]string{"X-Certbind-Client-Id": "admin"}, 200, `"x-certbind-client-id":"inventory"`, ""},
		{"client-sent partial-body mark is dropped", testbed.Billing, "POST", "/oauth2/token?client_id=billing", "", map[string]string{"X-Envoy-Auth-Partial-Body": "true"}, 200, `"access_token"`, ""},
		{"self-signed certificate refused at TLS", testbed.Partner, "GET", "/internal/stock", "", nil, 400, "", ""},
		{"expired certificate refused at TLS", testbed.Expired, "GET", "/internal/stock", "", nil, 400, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.do(t, tc.cert, tc.method, tc.path, tc.authz, tc.hdr)
			if got.status != tc.status || !strings.Contains(got.body, tc.body) {
				t.Fatalf("%d %s, want %d containing %s", got.status, got.body, tc.status, tc.body)
			}
			if tc.reason != "" && got.hdr.Get("X-Certbind-Reason") != tc.reason {
				t.Errorf("reason %q, want %s", got.hdr.Get("X-Certbind-Reason"), tc.reason)
			}
			if tc.status == 401 && tc.authz != "" && !strings.Contains(got.hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", got.hdr.Get("WWW-Authenticate"))
			}
			// auth_request copies WWW-Authenticate onto a 401 itself: exactly one, never two.
			if n := len(got.hdr.Values("WWW-Authenticate")); (tc.status == 401 && tc.method == "GET") != (n == 1) || n > 1 {
				t.Errorf("%d WWW-Authenticate values: %q", n, got.hdr.Values("WWW-Authenticate"))
			}
		})
	}
}

// TestNginxUpstreamCertificateHeaders: RFC 9440 section 3 sanitizes Client-Cert and
// Client-Cert-Chain together. Behind the shipped configuration the upstream sees certbind's
// verified Client-Cert and none of the certificate headers the client sent: not its
// Client-Cert, not its Client-Cert-Chain, not an X-Forwarded-Client-Cert.
func TestNginxUpstreamCertificateHeaders(t *testing.T) {
	r := start(t)
	accessToken := r.token(t, r.base, testbed.Billing)
	forged := map[string]string{
		"Client-Cert":             ":Zm9yZ2VkIGxlYWY=:",
		"Client-Cert-Chain":       ":Zm9yZ2VkIGludGVybWVkaWF0ZQ==:, :Zm9yZ2VkIHJvb3Q=:",
		"X-Forwarded-Client-Cert": `Hash=00;Cert="forged";Subject="CN=admin"`,
	}
	for _, tc := range []struct {
		name, cert, path, authz string
	}{
		{"identity", testbed.Inventory, "/internal/stock", ""},
		{"bound_token", testbed.Billing, "/api/orders", "Bearer " + accessToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.do(t, tc.cert, "GET", tc.path, tc.authz, forged)
			if got.status != 200 {
				t.Fatalf("%d %s", got.status, got.body)
			}
			var echo demoapp.Echo
			if err := json.Unmarshal([]byte(got.body), &echo); err != nil {
				t.Fatalf("upstream echo %s: %v", got.body, err)
			}
			for _, h := range []string{"client-cert-chain", "x-forwarded-client-cert"} {
				if v, ok := echo.Headers[h]; ok {
					t.Errorf("the upstream received the client's %s: %q", h, v)
				}
			}
			if got, want := echo.Headers["client-cert"], ":"+base64.StdEncoding.EncodeToString(r.leaf(t, tc.cert))+":"; got != want {
				t.Errorf("client-cert %q, want certbind's %q", got, want)
			}
		})
	}
}

// leaf is the DER of the named client's certificate.
func (r *rig) leaf(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.pki, testbed.CertFile(name)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", testbed.CertFile(name))
	}
	return b.Bytes
}

// TestNginxRoutes: behind the real nginx with the shipped configuration, a segment route
// protects its bare path and query forms (path_separated_prefix /api/admin in the test bed's
// configuration), and a host route is reached whatever the case, port or trailing dot of the
// authority (nginx passes $host, which certbind canonicalizes again).
func TestNginxRoutes(t *testing.T) {
	r := start(t)
	read := "Bearer " + r.token(t, r.base, testbed.Billing) // scope read only
	for _, tc := range []struct {
		name, path, host string
		status           int
		reason           string
	}{
		{"bare segment path", "/api/admin", "", 403, "insufficient_scope"},
		{"bare segment path with a query", "/api/admin?x=1", "", 403, "insufficient_scope"},
		{"below the segment", "/api/admin/users", "", 403, "insufficient_scope"},
		{"another segment sharing the prefix", "/api/administrator", "", 200, ""},
		{"host route", "/api/orders", "admin.certbind.test", 403, "insufficient_scope"},
		{"host route with a trailing dot", "/api/orders", "admin.certbind.test.", 403, "insufficient_scope"},
		{"host route in upper case with a port", "/api/orders", "ADMIN.certbind.test:8443", 403, "insufficient_scope"},
		{"another host", "/api/orders", "api.certbind.test", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr map[string]string
			if tc.host != "" {
				hdr = map[string]string{"Host": tc.host}
			}
			got := r.do(t, testbed.Billing, "GET", tc.path, read, hdr)
			if got.status != tc.status || got.hdr.Get("X-Certbind-Reason") != tc.reason {
				t.Fatalf("%d %q %s, want %d %q", got.status, got.hdr.Get("X-Certbind-Reason"), got.body, tc.status, tc.reason)
			}
		})
	}
}

// TestNginxForwardsRequestHost: upstreams behind the shipped configuration (the authorization
// server builds its metadata URLs from them) see the client's Host and https, not the
// upstream's name.
func TestNginxForwardsRequestHost(t *testing.T) {
	r := start(t)
	got := r.do(t, testbed.Inventory, "GET", "/internal/stock", "", map[string]string{"Host": "api.certbind.test:8443"})
	var echo demoapp.Echo
	if err := json.Unmarshal([]byte(got.body), &echo); got.status != 200 || err != nil {
		t.Fatalf("%d %s", got.status, got.body)
	}
	if echo.Headers["host"] != "api.certbind.test:8443" || echo.Headers["x-forwarded-proto"] != "https" {
		t.Errorf("upstream host %q, x-forwarded-proto %q", echo.Headers["host"], echo.Headers["x-forwarded-proto"])
	}
}

// TestNginxSelfSignedServer: the shipped server for self_signed_tls_client_auth clients
// (ssl_verify_client optional_no_ca) lets a self-signed client get a bound token and use it,
// while certbind still verifies every other certificate itself.
func TestNginxSelfSignedServer(t *testing.T) {
	r := start(t)
	accessToken := r.token(t, r.selfBase, testbed.Partner)
	for _, tc := range []struct {
		name, cert, method, path, authz string
		status                          int
		reason                          string
	}{
		{"its bound token at the API", testbed.Partner, "GET", "/api/orders", "Bearer " + accessToken, 200, ""},
		{"another client's client_id", testbed.Partner, "POST", "/oauth2/token?client_id=billing", "", 401, "certificate_untrusted"},
		{"a certificate of an untrusted CA", testbed.Untrusted, "POST", "/oauth2/token?client_id=billing", "", 401, "certificate_untrusted"},
		{"a PKI client still works", testbed.Billing, "POST", "/oauth2/token?client_id=billing", "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.doAt(t, r.selfBase, tc.cert, tc.method, tc.path, tc.authz, nil)
			if got.status != tc.status || got.hdr.Get("X-Certbind-Reason") != tc.reason {
				t.Fatalf("%d %q %s, want %d %q", got.status, got.hdr.Get("X-Certbind-Reason"), got.body, tc.status, tc.reason)
			}
		})
	}
}
