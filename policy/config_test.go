package policy_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
)

func TestExampleConfigLoads(t *testing.T) {
	w := newWorld(t)
	cfg := w.load(t, exampleConfig)
	if got := len(cfg.Clients()); got != 3 {
		t.Fatalf("%d clients, want 3", got)
	}
	if cfg.XFCC.Elements != "single" || cfg.XFCC.MaxHeaderBytes != policy.DefaultXFCCMaxHeaderBytes {
		t.Errorf("xfcc settings %+v", cfg.XFCC)
	}
	if cfg.Sources.Peer != policy.SourceAccept || cfg.Sources.XFCC != policy.SourceAccept {
		t.Errorf("sources %+v", cfg.Sources)
	}
	want := []string{filepath.Join(w.dir, "pki/ca.pem"), filepath.Join(w.dir, "pki/partner.jwks.json")}
	if got := cfg.Files(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("files %v, want %v", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	w := newWorld(t)
	w.write(t, "pki/key.pem", w.billing.KeyPEM())
	w.write(t, "pki/garbage.pem", []byte("not a certificate"))
	w.write(t, "pki/leaf.pem", w.billing.PEM())
	w.write(t, "pki/nox5c.jwks.json", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"Z1A63M3-BXfV3jqlzMMgchmFlPcMTAPAMcWtn1VcYCY","y":"0OG-1rtqppwOoPMt6O5PNazyS15UjLe3ci6ihrQsNFU"}]}`))
	const pkiClient = "  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: \"CN=billing\"}\n"
	tests := []struct {
		name, yaml string
		want       []string // each must appear in the error
	}{
		{"empty file", "", []string{"empty"}},
		{"null document", "---\n~\n", []string{"the file is empty"}},
		{"null client entry", "clients: [~]\n", []string{"clients[0]: empty entry"}},
		{"null entry before a mistyped one", "clients:\n  - ~\n  - {client_id: a, revocation_failure: [x]}\n",
			[]string{"clients[0]: empty entry", "clients[1].revocation_failure: expected a single value"}},
		{"null route", "routes: [~]\n", []string{"routes[0]: empty entry"}},
		{"unknown top-level key", "trust_anchor: [pki/ca.pem]\n", []string{"trust_anchor: unknown key"}},
		{"unknown client key", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_sna_dns: x}\n",
			[]string{"clients[0].tls_client_auth_sna_dns: unknown key"}},
		{"wrong type", "xfcc: {max_header_bytes: lots}\n", []string{`xfcc.max_header_bytes: "lots" is not a valid integer`}},
		{"list expected", "trust_anchors: pki/ca.pem\n", []string{"trust_anchors: expected a list"}},
		{"missing trust anchor file", "trust_anchors: [pki/nope.pem]\n", []string{"trust_anchors[0]:", "no such file"}},
		{"bad PEM", "trust_anchors: [pki/garbage.pem]\n", []string{"trust_anchors[0]: pki/garbage.pem: not PEM"}},
		{"private key as anchor", "trust_anchors: [pki/key.pem]\n", []string{`trust_anchors[0]: pki/key.pem: PEM block 1 is "PRIVATE KEY"`}},
		{"leaf as anchor", "trust_anchors: [pki/leaf.pem]\n", []string{"trust_anchors[0]: pki/leaf.pem:", "is not a CA certificate"}},
		{"two subject fields", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: CN=a, tls_client_auth_san_dns: a.example}\n",
			[]string{"clients[0]: tls_client_auth needs exactly one of", "found 2"}},
		{"no subject field", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth}\n",
			[]string{"clients[0]: tls_client_auth needs exactly one of", "found 0"}},
		{"duplicate client_id", "trust_anchors: [pki/ca.pem]\nclients:\n" + pkiClient + pkiClient, []string{`clients[1].client_id: duplicate client_id "billing"`}},
		{"missing client_id", "clients:\n  - {token_endpoint_auth_method: tls_client_auth}\n", []string{"clients[0].client_id: missing"}},
		{"unsupported method", "clients:\n  - {client_id: a, token_endpoint_auth_method: client_secret_basic}\n", []string{`clients[0].token_endpoint_auth_method: "client_secret_basic"`}},
		{"bad DN", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: \"/C=US/CN=a\"}\n",
			[]string{"clients[0].tls_client_auth_subject_dn:"}},
		{"bad IP", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_ip: 192.0.2.010}\n",
			[]string{"clients[0].tls_client_auth_san_ip:", "not an IP address"}},
		{"bad email", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: a, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_email: nobody}\n",
			[]string{"clients[0].tls_client_auth_san_email:"}},
		{"PKI client without any anchor", "clients:\n" + pkiClient, []string{`trust_anchors: client "billing" uses tls_client_auth without its own trust_anchors`}},
		{"self-signed with two key sources", "clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_file: pki/partner.jwks.json, jwks_uri: \"https://as.example/jwks\"}\n",
			[]string{"clients[0]: self_signed_tls_client_auth needs exactly one of jwks, jwks_file, jwks_uri; found 2"}},
		{"self-signed without x5c", "clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_file: pki/nox5c.jwks.json}\n",
			[]string{"clients[0].jwks_file.keys[0]: x5c missing"}},
		{"inline jwks without keys", "clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks: {keys: []}}\n",
			[]string{"clients[0].jwks: jwks: no keys"}},
		{"self-signed with a subject", "clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_file: pki/partner.jwks.json, tls_client_auth_subject_dn: CN=p}\n",
			[]string{"clients[0]: tls_client_auth_subject_dn belongs to tls_client_auth"}},
		{"jwks_uri not a URL", "clients:\n  - {client_id: p, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_uri: \"file:///etc/passwd\"}\n",
			[]string{`clients[0].jwks_uri: "file:///etc/passwd" is not an http(s) URL`}},
		{"bad route mode", "routes:\n  - {path_prefix: /x, mode: bearer}\n", []string{`routes[0].mode: unknown mode "bearer"`}},
		{"route prefix without slash", "routes:\n  - {path_prefix: x, mode: identity}\n", []string{`routes[0].path_prefix: "x" must start with /`}},
		{"both prefix kinds", "routes:\n  - {path_prefix: /a/, path_separated_prefix: /a, mode: identity}\n", []string{`routes[0]: path_prefix and path_separated_prefix are exclusive`}},
		{"separated prefix with a trailing slash", "routes:\n  - {path_separated_prefix: /a/, mode: identity}\n", []string{`routes[0].path_separated_prefix: "/a/" must start with / and end without one`}},
		{"separated prefix with a query", "routes:\n  - {path_separated_prefix: \"/a?x\", mode: identity}\n", []string{`routes[0].path_separated_prefix: "/a?x"`}},
		{"route host with a port", "routes:\n  - {host: admin.example.org:443, mode: identity}\n", []string{`routes[0].host: "admin.example.org:443" is not a host name or IP address (without a port)`}},
		{"route host IPv6 with a port", "routes:\n  - {host: \"[2001:db8::1]:443\", mode: identity}\n", []string{`routes[0].host: "[2001:db8::1]:443" is not a host name or IP address (without a port)`}},
		{"route host not a name", "routes:\n  - {host: \"admin example\", mode: identity}\n", []string{`routes[0].host: "admin example" is not a host name`}},
		{"route clients unregistered", "trust_anchors: [pki/ca.pem]\nclients:\n" + pkiClient + "routes:\n  - {mode: identity, clients: [billing, biling]}\n", []string{`routes[0].clients[1]: "biling" is not a registered client_id`}},
		{"route clients empty", "routes:\n  - {mode: identity, clients: []}\n", []string{`routes[0].clients: an empty list lets no client through`}},
		{"client_id with a line break", "trust_anchors: [pki/ca.pem]\nclients:\n  - {client_id: \"a\\r\\nb\", token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_dns: a.example}\n", []string{`clients[0].client_id: "a\r\nb" contains a control character`}},
		{"max_form_bytes negative", "client_auth: {max_form_bytes: -1}\n", []string{"client_auth.max_form_bytes: must be positive"}},
		{"xfcc elements", "xfcc: {elements: first}\n", []string{`xfcc.elements: "first"`}},
		{"crl_expired", "crl_expired: maybe\n", []string{`crl_expired: "maybe": want deny or ignore`}},
		{"bad CRL", "crl_files: [pki/garbage.pem]\n", []string{"crl_files[0]: pki/garbage.pem:"}},
		{"both sources ignored", "certificate_sources: {peer: ignore, xfcc: ignore}\n", []string{"certificate_sources: peer and xfcc are both ignore"}},
		{"last without the peer certificate", "xfcc: {elements: last}\ncertificate_sources: {peer: ignore}\n", []string{"xfcc.elements: last needs certificate_sources.peer"}},
		{"bad source mode", "certificate_sources: {peer: maybe}\n", []string{`certificate_sources.peer: "maybe"`}},
		{"several problems at once", "trust_anchors: [pki/nope.pem]\nxfcc: {elements: first}\n", []string{"trust_anchors[0]:", "xfcc.elements:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := w.write(t, "bad.yaml", []byte(tc.yaml))
			_, err := policy.LoadConfig(p, policy.LoadOptions{})
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
	if _, err := policy.LoadConfig(filepath.Join(w.dir, "absent.yaml"), policy.LoadOptions{}); !os.IsNotExist(err) {
		t.Errorf("missing config file: %v", err)
	}
}

// roundTripFunc is an http.RoundTripper in a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLoadOptionsHTTPClient: the configuration's fetches go through the injected client (here
// the only way to reach a jwks_uri on a host that does not exist).
func TestLoadOptionsHTTPClient(t *testing.T) {
	w := newWorld(t)
	keys := jwksFor(t, w.partner)
	var fetched []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fetched = append(fetched, r.URL.String())
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(keys)), Request: r}, nil
	})}
	p := w.write(t, "certbind.yaml", []byte("clients:\n  - {client_id: partner, token_endpoint_auth_method: self_signed_tls_client_auth, jwks_uri: \"https://keys.invalid/partner.jwks\"}\n"))
	cfg, err := policy.LoadConfig(p, policy.LoadOptions{HTTPClient: client, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(policy.EngineConfig{Config: cfg, Now: func() time.Time { return t0 }})
	if d := decide(e, policy.Input{ModeHint: "client_auth", Request: tokenRequest("partner"), Certificate: presented(t, w.partner)}); d.Reason != policy.ReasonOK {
		t.Fatalf("%s (%v)", d.Reason, d.Cause)
	}
	if len(fetched) != 1 || fetched[0] != "https://keys.invalid/partner.jwks" {
		t.Errorf("fetches through the injected client: %q", fetched)
	}
}
