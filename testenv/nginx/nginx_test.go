package nginx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/testbed"
)

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
	Binary(t)
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
	if err := os.WriteFile(cfgPath, []byte(base+HTTPAuthzConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := testbed.LoadSigningKey(filepath.Join(pki, testbed.FileASKey))
	if err != nil {
		t.Fatal(err)
	}
	srv := Start(t, Config{
		Dir:   dir,
		PKI:   pki,
		Authz: ServeCertbind(t, cfgPath),
		AS:    Serve(t, demoapp.NewAS(demoapp.ASConfig{Issuer: testbed.Issuer, Audience: testbed.Audience, Key: key, KeyID: testbed.ASKeyID})),
		API:   Serve(t, demoapp.NewAPI()),
	})
	return newRig(t, srv, pki)
}

// newRig is a rig for the nginx at srv, with an HTTPS client per test bed certificate of pki.
func newRig(t *testing.T, srv *Server, pki string) *rig {
	t.Helper()
	r := &rig{base: srv.Base, selfBase: srv.SelfBase, pki: pki, roots: x509.NewCertPool(), clients: map[string]*http.Client{}}
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
	return r
}

// token gets an access token for the named client (its client_id is its name) from the server
// at base: client_credentials, client_id in the form body as RFC 8705 clients send it.
func (r *rig) token(t *testing.T, base, client string) string {
	t.Helper()
	tok := r.send(t, base, client, "POST", "/oauth2/token", "", "grant_type=client_credentials&scope=read&client_id="+client, nil)
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

// doAt sends the request to the server at base. A POST is a client_credentials token
// request without client_id.
func (r *rig) doAt(t *testing.T, base, cert, method, path, authz string, hdr map[string]string) result {
	t.Helper()
	form := ""
	if method == "POST" {
		form = "grant_type=client_credentials&scope=read"
	}
	return r.send(t, base, cert, method, path, authz, form, hdr)
}

// send sends the request with the given form body (none when empty).
func (r *rig) send(t *testing.T, base, cert, method, path, authz, form string, hdr map[string]string) result {
	t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
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
	// client_auth with client_id in the form body: certbind.js sends the body to certbind.
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
		{"no client_id at all", testbed.Billing, "POST", "/oauth2/token", "", nil, 400, `"error":"invalid_request"`, "client_id_missing"},
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

// TestNginxTokenEndpointForm: RFC 8705 clients send client_id in the form body, which
// auth_request cannot forward. Behind the shipped configuration certbind.js sends the body to
// certbind first: an unmodified client gets its token, and every client_id certbind would
// refuse on the Envoy path is refused here, before the authorization server, with the status
// certbind meant.
func TestNginxTokenEndpointForm(t *testing.T) {
	r := start(t)
	big := "grant_type=client_credentials&client_id=billing&pad=" + strings.Repeat("a", 64<<10)
	for _, tc := range []struct {
		name, cert, path, form string
		hdr                    map[string]string
		status                 int
		body, reason           string
	}{
		{"client_id in the body", testbed.Billing, "/oauth2/token", "grant_type=client_credentials&client_id=billing", nil, 200, `"access_token"`, ""},
		{"by SAN, client_id in the body", testbed.Reports, "/oauth2/token", "grant_type=client_credentials&client_id=reports&scope=read", nil, 200, `"access_token"`, ""},
		{"another client's client_id in the body", testbed.Reports, "/oauth2/token", "grant_type=client_credentials&client_id=billing", nil, 401, `"error":"invalid_client"`, "certificate_not_bound"},
		{"body and query disagree", testbed.Billing, "/oauth2/token?client_id=billing", "client_id=reports&grant_type=client_credentials", nil, 400, `"error":"invalid_request"`, "client_id_conflict"},
		{"client_id twice with different values", testbed.Billing, "/oauth2/token", "client_id=billing&client_id=reports", nil, 400, `"error":"invalid_request"`, "client_id_conflict"},
		{"not a form", testbed.Billing, "/oauth2/token", `{"client_id":"billing"}`, map[string]string{"Content-Type": "application/json"}, 400, `"error":"invalid_request"`, "request_malformed"},
		{"a client-sent partial-body mark is dropped", testbed.Billing, "/oauth2/token", "grant_type=client_credentials&client_id=billing", map[string]string{"X-Envoy-Auth-Partial-Body": "true"}, 200, `"access_token"`, ""},
		{"a form over 64 KiB is refused by nginx", testbed.Billing, "/oauth2/token", big, nil, 413, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.send(t, r.base, tc.cert, "POST", tc.path, "", tc.form, tc.hdr)
			if got.status != tc.status || !strings.Contains(got.body, tc.body) || got.hdr.Get("X-Certbind-Reason") != tc.reason {
				t.Fatalf("%d %q %s, want %d %q containing %s", got.status, got.hdr.Get("X-Certbind-Reason"), got.body, tc.status, tc.reason, tc.body)
			}
			if tc.status == 401 && got.hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q on a denial", got.hdr.Get("Cache-Control"))
			}
		})
	}
	// The token the form request got is bound and works at the API.
	got := r.send(t, r.base, testbed.Inventory, "POST", "/oauth2/token", "", "grant_type=client_credentials&client_id=inventory", nil)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(got.body), &tr); got.status != 200 || err != nil {
		t.Fatalf("token: %d %s", got.status, got.body)
	}
	if api := r.do(t, testbed.Inventory, "GET", "/api/orders", "Bearer "+tr.AccessToken, nil); api.status != 200 {
		t.Fatalf("API with the token: %d %s", api.status, api.body)
	}
}

// TestNginxTokenEndpointFailsClosed: when certbind cannot be asked, the token request fails
// (500, as auth_request fails) and never reaches the authorization server.
func TestNginxTokenEndpointFailsClosed(t *testing.T) {
	Binary(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := testbed.GeneratePKI(pki, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	as := Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached.Add(1) }))
	srv := Start(t, Config{Dir: dir, PKI: pki, Authz: freePort(t), AS: as, API: as})
	r := newRig(t, srv, pki)
	got := r.send(t, r.base, testbed.Billing, "POST", "/oauth2/token", "", "grant_type=client_credentials&client_id=billing", nil)
	if got.status != 500 || reached.Load() != 0 {
		t.Fatalf("%d %s, the authorization server reached %d times", got.status, got.body, reached.Load())
	}
}

// TestNginxFormSubrequestHeaders: /_certbind_form, the token endpoint's subrequest, sets the
// same headers as /_certbind but for the body's own Content-Length; a header added to one and
// not the other would let a client's copy through or leave certbind without it.
func TestNginxFormSubrequestHeaders(t *testing.T) {
	data, err := os.ReadFile("../../deploy/nginx/certbind-locations.conf")
	if err != nil {
		t.Fatal(err)
	}
	headers := func(location string) map[string]string {
		start := strings.Index(string(data), "location = "+location+" {")
		if start < 0 {
			t.Fatalf("no location %s", location)
		}
		block, _, _ := strings.Cut(string(data)[start:], "\n}")
		out := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && (f[0] == "proxy_set_header" || f[0] == "proxy_pass") {
				out[f[0]+" "+f[1]] = strings.Join(f[2:], " ")
			}
		}
		return out
	}
	plain, form := headers("/_certbind"), headers("/_certbind_form")
	if plain["proxy_set_header Content-Length"] != `"";` {
		t.Errorf("/_certbind must clear Content-Length (auth_request sends no body): %q", plain["proxy_set_header Content-Length"])
	}
	delete(plain, "proxy_set_header Content-Length")
	if len(plain) < 8 || !maps.Equal(plain, form) {
		t.Fatalf("/_certbind sets %v,\n/_certbind_form sets %v", plain, form)
	}
}
