package extauthz_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/pki"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func nowT0() time.Time { return t0 }

type fixture struct {
	dir                 string
	root, inter         *pki.Cert
	billing, other, svc *pki.Cert
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	win := pki.Validity(t0.Add(-time.Hour), t0.Add(24*time.Hour))
	f := &fixture{dir: t.TempDir()}
	f.root = pki.NewRoot("Test Root", win)
	f.inter = f.root.Intermediate("Test Intermediate", win)
	f.billing = f.inter.Leaf("billing", pki.Subject("CN=billing,O=Example Corp,C=SE"), win)
	f.other = f.inter.Leaf("reports", pki.Subject("CN=reports,O=Example Corp,C=SE"), win)
	f.svc = f.inter.Leaf("svc", pki.URI("spiffe://example.org/svc"), win)
	f.write(t, "ca.pem", f.root.PEM())
	f.write(t, "inter.pem", f.inter.PEM())
	return f
}

func (f *fixture) write(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

const baseConfig = `trust_anchors: [ca.pem]
clients:
  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=billing,O=Example Corp,C=SE"}
  - {client_id: reports, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=reports,O=Example Corp,C=SE"}
  - {client_id: svc, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_uri: "spiffe://example.org/svc"}
routes:
  - {path_prefix: /oauth2/token, mode: client_auth}
  - {path_prefix: /internal/, mode: identity}
`

// start runs the real gRPC service over bufconn and returns a generated client.
func (f *fixture) start(t *testing.T, yaml string) (authv3.AuthorizationClient, *logtest.Hook) {
	t.Helper()
	f.write(t, "certbind.yaml", []byte(yaml))
	cfg, err := policy.LoadConfig(filepath.Join(f.dir, "certbind.yaml"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return t0 }}))
}

func startServer(t *testing.T, e *policy.Engine) (authv3.AuthorizationClient, *logtest.Hook) {
	t.Helper()
	logger, hook := logtest.NewNullLogger()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, extauthz.New(extauthz.Config{Engine: e, Logger: logger}))
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn), hook
}

// req builds a CheckRequest as Envoy does: lower-case headers with pseudo-headers, the route's
// context extensions, and the peer certificate URL-encoded when given.
type req struct {
	mode, path, body, xfccHeader string
	destination                  string
	peer                         *pki.Cert
	headers                      map[string]string
}

func (r req) build() *authv3.CheckRequest {
	path := r.path
	if path == "" {
		path = "/oauth2/token"
	}
	h := map[string]string{":method": "POST", ":path": path, ":authority": "api.example.org", "x-request-id": "req-1"}
	if r.body != "" {
		h["content-type"] = "application/x-www-form-urlencoded"
	}
	if r.xfccHeader != "" {
		h["x-forwarded-client-cert"] = r.xfccHeader
	}
	for k, v := range r.headers {
		h[k] = v
	}
	cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: path, Host: "api.example.org", Headers: h, Body: r.body,
		}},
	}}
	if r.mode != "" {
		cr.Attributes.ContextExtensions = map[string]string{extauthz.ModeKey: r.mode}
	}
	if r.peer != nil {
		cr.Attributes.Source.Certificate = envoyxfcc.EncodePEM(r.peer.PEM())
	}
	if r.destination != "" {
		cr.Attributes.Destination = &authv3.AttributeContext_Peer{Principal: r.destination}
	}
	return cr
}

// envoyXFCC is what Envoy's SANITIZE_SET with cert and chain writes for c.
func envoyXFCC(c *pki.Cert) string {
	return "Hash=" + hexThumb(c) + ";Cert=\"" + envoyxfcc.EncodePEM(c.PEM()) + "\";Chain=\"" + envoyxfcc.EncodePEM(c.ChainPEM()) + "\""
}

func hexThumb(c *pki.Cert) string {
	return policy.ThumbprintOf(c.DER()).Hex()
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	client, hook := f.start(t, baseConfig)
	form := "grant_type=client_credentials&client_id="
	tests := []struct {
		name   string
		req    req
		reason policy.Reason
		status int // HTTP status of the denial
		oauth  string
	}{
		{"XFCC with chain", req{body: form + "billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonOK, 0, ""},
		{"peer and XFCC agree", req{body: form + "billing", peer: f.billing, xfccHeader: envoyXFCC(f.billing)}, policy.ReasonOK, 0, ""},
		{"route from config, identity", req{path: "/internal/x", xfccHeader: envoyXFCC(f.svc)}, policy.ReasonOK, 0, ""},

		{"peer leaf alone cannot reach the root", req{body: form + "billing", peer: f.billing}, policy.ReasonCertificateUntrusted, 401, "invalid_client"},
		{"spoofed XFCC next to the real peer certificate", req{body: form + "billing", peer: f.other, xfccHeader: envoyXFCC(f.billing)}, policy.ReasonCertificateMismatch, 401, "invalid_client"},
		{"XFCC Hash of another certificate", req{body: form + "billing", peer: f.billing, xfccHeader: "Hash=" + hexThumb(f.other)}, policy.ReasonCertificateMismatch, 401, "invalid_client"},
		{"XFCC unmatched quote", req{body: form + "billing", xfccHeader: `Hash=` + hexThumb(f.billing) + `;Cert="abc`}, policy.ReasonXFCCMalformed, 401, "invalid_client"},
		{"two XFCC elements in single mode", req{body: form + "billing", xfccHeader: envoyXFCC(f.other) + "," + envoyXFCC(f.billing)}, policy.ReasonXFCCElements, 401, "invalid_client"},
		{"XFCC without Cert and no peer", req{body: form + "billing", xfccHeader: "Hash=" + hexThumb(f.billing)}, policy.ReasonNoCertificate, 401, "invalid_client"},
		{"no certificate at all", req{body: form + "billing"}, policy.ReasonNoCertificate, 401, "invalid_client"},
		{"another client's certificate", req{body: form + "billing", xfccHeader: envoyXFCC(f.other)}, policy.ReasonCertificateUnbound, 401, "invalid_client"},
		{"conflicting client_id", req{path: "/oauth2/token?client_id=reports", body: form + "billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonClientIDConflict, 400, "invalid_request"},
		{"identity: unregistered", req{mode: "identity", xfccHeader: envoyXFCC(f.inter.Leaf("x"))}, policy.ReasonNoMatchingClient, 403, "access_denied"},
		{"no route", req{path: "/elsewhere", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonNoPolicy, 403, "access_denied"},
		{"unknown mode", req{mode: "magic", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonUnknownMode, 403, "access_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hook.Reset()
			resp, err := client.Check(context.Background(), tc.req.build())
			if err != nil {
				t.Fatalf("Check: %v (a decision must never be a gRPC error)", err)
			}
			entry := hook.LastEntry()
			if entry == nil || entry.Data["reason"] != string(tc.reason) || entry.Data["request_id"] != "req-1" {
				t.Fatalf("log line %v, want reason %s and request_id", entry, tc.reason)
			}
			if tc.reason == policy.ReasonOK {
				if resp.GetStatus().GetCode() != int32(codes.OK) || resp.GetOkResponse() == nil {
					t.Fatalf("denied: %v", resp)
				}
				return
			}
			den := resp.GetDeniedResponse()
			if resp.GetStatus().GetCode() == int32(codes.OK) || den == nil {
				t.Fatalf("allowed: %v", resp)
			}
			if resp.GetStatus().GetMessage() != string(tc.reason) {
				t.Errorf("status message %q, want %s", resp.GetStatus().GetMessage(), tc.reason)
			}
			if int(den.GetStatus().GetCode()) != tc.status {
				t.Errorf("HTTP %d, want %d", den.GetStatus().GetCode(), tc.status)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(den.GetBody()), &body); err != nil || body["error"] != tc.oauth || body["error_description"] != tc.reason.Description() {
				t.Errorf("body %s (%v), want error %q", den.GetBody(), err, tc.oauth)
			}
			hdr := headerMap(den.GetHeaders())
			if hdr["content-type"] != "application/json" || hdr["cache-control"] != "no-store" {
				t.Errorf("headers %v", hdr)
			}
			if got := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); got != string(tc.reason) {
				t.Errorf("dynamic metadata reason %q", got)
			}
		})
	}
}

func TestCheckMalformedPeerCertificate(t *testing.T) {
	f := newFixture(t)
	client, _ := f.start(t, baseConfig)
	cr := req{body: "client_id=billing"}.build()
	for _, bad := range []string{"not a certificate", url.PathEscape("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "%zz"} {
		cr.Attributes.Source.Certificate = bad
		resp, err := client.Check(context.Background(), cr)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetStatus().GetMessage(); got != string(policy.ReasonCertificateMalformed) {
			t.Errorf("%q: %s, want certificate_malformed", bad, got)
		}
	}
}

func TestCheckAllowHeaders(t *testing.T) {
	f := newFixture(t)
	client, hook := f.start(t, baseConfig)
	// The client sends its own copies of certbind's headers: they must be overwritten.
	resp, err := client.Check(context.Background(), req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing),
		headers: map[string]string{"x-certbind-client-id": "admin", "client-cert": ":Zm9v:"}}.build())
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("denied: %v", resp)
	}
	want := map[string]string{
		extauthz.HeaderClientID:   "billing",
		extauthz.HeaderThumbprint: policy.ThumbprintOf(f.billing.DER()).String(),
		extauthz.HeaderClientCert: ":" + base64.StdEncoding.EncodeToString(f.billing.DER()) + ":",
	}
	got := headerMap(ok.GetHeaders())
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
			t.Errorf("%s: append_action %v append %v: a client-sent copy could survive", h.GetHeader().GetKey(), h.GetAppendAction(), h.GetAppend())
		}
	}
	// Envoy applies headers_to_remove after the additions (Envoy's ext_authz filter, onComplete): it must list
	// exactly certbind's headers this decision does not set.
	if rm := strings.Join(ok.GetHeadersToRemove(), ","); rm != extauthz.HeaderClientCertChain+","+extauthz.HeaderSubject+","+extauthz.HeaderScope+","+extauthz.HeaderDPoPKey {
		t.Errorf("headers_to_remove %q", rm)
	}
	md := resp.GetDynamicMetadata().GetFields()
	if md["decision"].GetStringValue() != "allow" || md["client_id"].GetStringValue() != "billing" || md["mode"].GetStringValue() != "client_auth" {
		t.Errorf("dynamic metadata %v", md)
	}
	e := hook.LastEntry()
	if e.Data["client_id"] != "billing" || e.Data["thumbprint"] != want[extauthz.HeaderThumbprint] || e.Data["decision"] != "allow" {
		t.Errorf("log fields %v", e.Data)
	}
	line, _ := e.String()
	if strings.Contains(line, "BEGIN") || strings.Contains(line, base64.StdEncoding.EncodeToString(f.billing.DER())[:40]) {
		t.Errorf("log line contains certificate material: %s", line)
	}
}

func TestCheckSourcesAndIntermediates(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, extra string
		r           req
		want        policy.Reason
	}{
		{"configured intermediates complete a peer-only leaf", "intermediates: [inter.pem]\n", req{body: "client_id=billing", peer: f.billing}, policy.ReasonOK},
		{"peer required but absent", "certificate_sources: {peer: require}\n", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonNoCertificate},
		{"XFCC required but absent", "intermediates: [inter.pem]\ncertificate_sources: {xfcc: require}\n", req{body: "client_id=billing", peer: f.billing}, policy.ReasonNoCertificate},
		{"XFCC ignored", "certificate_sources: {xfcc: ignore}\n", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonNoCertificate},
		{"peer ignored: a mismatching peer does not matter", "certificate_sources: {peer: ignore}\n", req{body: "client_id=billing", peer: f.other, xfccHeader: envoyXFCC(f.billing)}, policy.ReasonOK},
		{"last element in APPEND_FORWARD mode, confirmed by the peer", "xfcc: {elements: last}\n", req{body: "client_id=billing", peer: f.billing, xfccHeader: "By=spiffe://edge;Hash=" + hexThumb(f.other) + "," + envoyXFCC(f.billing)}, policy.ReasonOK},
		{"last element without the peer certificate", "xfcc: {elements: last}\n", req{body: "client_id=billing", xfccHeader: "By=spiffe://edge;Hash=" + hexThumb(f.other) + "," + envoyXFCC(f.billing)}, policy.ReasonNoCertificate},
		{"forged last element, real peer differs", "xfcc: {elements: last}\n", req{body: "client_id=billing", peer: f.other, xfccHeader: envoyXFCC(f.other) + "," + envoyXFCC(f.billing)}, policy.ReasonCertificateMismatch},
		{"trusted proxy by By", "xfcc: {trusted_proxies: [spiffe://example.org/envoy]}\n", req{body: "client_id=billing", xfccHeader: "By=spiffe://example.org/envoy;" + envoyXFCC(f.billing)}, policy.ReasonOK},
		{"untrusted proxy", "xfcc: {trusted_proxies: [spiffe://example.org/envoy]}\n", req{body: "client_id=billing", xfccHeader: "By=spiffe://example.org/other;" + envoyXFCC(f.billing)}, policy.ReasonXFCCUntrusted},
		{"no By and no destination principal", "xfcc: {trusted_proxies: [spiffe://example.org/envoy]}\n", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonXFCCUntrusted},
		{"trusted proxy by destination principal", "xfcc: {trusted_proxies: [spiffe://example.org/envoy]}\n", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing), destination: "spiffe://example.org/envoy"}, policy.ReasonOK},
		{"chain longer than allowed", "xfcc: {max_chain_length: 1}\n", req{body: "client_id=billing", xfccHeader: envoyXFCC(f.billing)}, policy.ReasonChainTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := f.start(t, baseConfig+tc.extra)
			tc.r.mode = "client_auth"
			resp, err := client.Check(context.Background(), tc.r.build())
			if err != nil {
				t.Fatal(err)
			}
			got := policy.Reason(resp.GetStatus().GetMessage())
			if resp.GetStatus().GetCode() == 0 {
				got = policy.ReasonOK
			}
			if got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
		})
	}
}

func TestCheckHeaderMap(t *testing.T) {
	// With encode_raw_headers Envoy sends header_map instead of headers.
	f := newFixture(t)
	client, _ := f.start(t, baseConfig)
	cr := req{body: "client_id=billing"}.build()
	h := cr.Attributes.Request.Http
	h.Headers = nil
	h.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "content-type", RawValue: []byte("application/x-www-form-urlencoded")},
		{Key: "x-forwarded-client-cert", RawValue: []byte(envoyXFCC(f.billing))},
	}}
	resp, err := client.Check(context.Background(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOkResponse() == nil {
		t.Fatalf("denied: %v", resp.GetStatus())
	}
}

func TestCheckWithoutConfigIsAnError(t *testing.T) {
	client, _ := startServer(t, policy.NewEngine(policy.EngineConfig{}))
	_, err := client.Check(context.Background(), req{}.build())
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err %v, want Unavailable so Envoy's failure policy (deny) applies", err)
	}
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}
