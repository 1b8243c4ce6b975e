package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/nginx"
	"github.com/certbind/certbind/testenv/stack"
	"github.com/certbind/certbind/testenv/testbed"
)

// Resources of the authorization server: one API takes JWT access tokens (RFC 9068), the
// other opaque ones, which certbind introspects.
const (
	jwtAPI    = testbed.Audience // https://api.certbind.test
	opaqueAPI = "https://opaque.certbind.test"
)

// Resource-server clients of the authorization server, for certbind's introspection calls.
const (
	rsBasic       = "rs-basic" // client_secret_basic
	rsBasicSecret = "interop-introspection-secret"
	rsMTLS        = "rs-mtls" // tls_client_auth with Envoy's client certificate (SAN URI)
)

// Providers of as.mjs: main is behind the proxies and verified through discovery; other is
// reached directly and verified through a configured jwks_uri; stranger is configured nowhere.
const (
	provMain     = "main"
	provOther    = "other"
	provStranger = "stranger"
)

// signingKey is a fresh ES256 key as a private JWK.
func signingKey(t *testing.T, kid string) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data, err := jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// asClients registers the test bed's clients with the authorization server as they are
// registered with certbind, plus the two resource servers.
func asClients(t *testing.T, pki string) []map[string]any {
	t.Helper()
	partner, err := os.ReadFile(filepath.Join(pki, testbed.FilePartnerJWKS))
	if err != nil {
		t.Fatal(err)
	}
	client := func(id, method string, extra map[string]any) map[string]any {
		c := map[string]any{"client_id": id, "token_endpoint_auth_method": method,
			"grant_types": []string{"client_credentials"}, "response_types": []string{}, "redirect_uris": []string{}}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	return []map[string]any{
		client(testbed.Billing, "tls_client_auth", map[string]any{"tls_client_auth_subject_dn": testbed.BillingSubject}),
		client(testbed.Reports, "tls_client_auth", map[string]any{"tls_client_auth_san_uri": testbed.ReportsURI}),
		client(testbed.Inventory, "tls_client_auth", map[string]any{"tls_client_auth_san_dns": testbed.InventoryDNS}),
		client(testbed.Partner, "self_signed_tls_client_auth", map[string]any{"jwks": json.RawMessage(partner)}),
		client(rsBasic, "client_secret_basic", map[string]any{"client_secret": rsBasicSecret}),
		client(rsMTLS, "tls_client_auth", map[string]any{"tls_client_auth_san_uri": testbed.EnvoySPIFFEID}),
		client(dpopClient, "client_secret_basic", map[string]any{"client_secret": dpopSecret, "dpop_bound_access_tokens": true}),
	}
}

// introspectionAuth is how certbind authenticates to the introspection endpoint.
type introspectionAuth string

const (
	introspectBasic introspectionAuth = "client_secret_basic"
	introspectMTLS  introspectionAuth = "tls_client_auth"
)

// certbindConfig is the test bed's clients and routes with the authorization server's
// issuers: main through discovery, other through its jwks_uri, both over the test PKI (a
// private CA), and main's introspection endpoint for opaque tokens. main's tokens may be bound
// to a certificate or a DPoP key, other's only to a certificate. replay is tokens.dpop.replay
// ("" is the default: each certbind's own memory).
func certbindConfig(as *authServer, auth introspectionAuth, replay string) []byte {
	main, other := as.Providers[provMain].Issuer, as.Providers[provOther].Issuer
	client := fmt.Sprintf("    client_id: %s\n    client_secret: %s\n", rsBasic, rsBasicSecret)
	if auth == introspectMTLS {
		client = fmt.Sprintf("    client_id: %s\n    tls_cert: pki/%s\n    tls_key: pki/%s\n", rsMTLS, testbed.FileEnvoyClientCert, testbed.FileEnvoyClientKey)
	}
	base := testbed.ConfigWithoutTokens()
	return []byte(base + fmt.Sprintf(`
# A removed signing key must stop working within seconds here, not the default 5 minutes.
jwks_fetch: { refresh_interval: 1s, min_interval: 200ms }
tokens:
  realm: interop
  issuers:
    - issuer: %[1]s
      discovery: true
      tls_ca: pki/ca.pem
      audiences: [%[3]s]
      binding: either
    - issuer: %[2]s
      jwks_uri: %[2]s/oauth2/jwks
      tls_ca: pki/ca.pem
      audiences: [%[3]s]
      binding: required
  introspection:
    endpoint: %[1]s/oauth2/introspect
    issuer: %[1]s
    audiences: [%[4]s]
    tls_ca: pki/ca.pem
    binding: either
%[5]s  dpop:
    algorithms: [%[6]s]
%[7]s`, main, other, jwtAPI, opaqueAPI, client, strings.ReplaceAll(dpopAlgs, " ", ", "), replay) + nginx.HTTPAuthzConfig)
}

// front is one proxy in front of certbind, the authorization server and the API.
type front struct {
	name     string
	base     string // for PKI clients
	selfBase string // for self_signed_tls_client_auth clients
	// reasonHeader: the proxy passes certbind's X-Certbind-Reason to the client (nginx).
	// Elsewhere a denial is known as certbind's by its error_description.
	reasonHeader bool
}

// deniedBy says whether certbind, not the authorization server or the API, refused the
// request for the reason: by the X-Certbind-Reason the proxy passes on, or else by certbind's
// error_description of that reason.
func (f front) deniedBy(gotReason, description string, want policy.Reason) bool {
	if f.reasonHeader {
		return gotReason == string(want)
	}
	return gotReason == "" && description == want.Description()
}

// denied: a protected-resource call refused by certbind with the status and reason.
func (f front) denied(got callResult, status int, want policy.Reason) bool {
	var body struct {
		Description string `json:"error_description"`
	}
	json.Unmarshal([]byte(got.Body), &body)
	return got.Status == status && f.deniedBy(got.Reason, body.Description, want)
}

// startFronts puts nginx (shipped deploy/nginx, certbind's HTTP endpoint) and the Envoy
// stand-in (shipped envoy.yaml and envoy-self-signed.yaml, certbind over gRPC) in front of the
// authorization server's main provider and the demo API, each proxy with its own certbind on
// the configuration. dir holds the PKI in pki/.
func startFronts(t *testing.T, dir string, as *authServer, cfg []byte) []front {
	t.Helper()
	sub := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "pki"), filepath.Join(sub, "pki")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(sub, "certbind.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	api := nginx.Serve(t, demoapp.NewAPI())
	asAddr := as.Providers[provMain].HTTP
	ngx := nginx.Start(t, nginx.Config{Dir: sub, PKI: filepath.Join(dir, "pki"), Authz: nginx.ServeCertbind(t, cfgPath), AS: asAddr, API: api})

	s, err := stack.Start(stack.Options{Dir: sub, ReusePKI: true, Config: cfg,
		Upstreams: map[string]string{"as": "http://" + asAddr, "api": "http://" + api}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return []front{
		{name: "nginx", base: ngx.Base, selfBase: ngx.SelfBase, reasonHeader: true},
		{name: "envoy", base: s.FrontURL, selfBase: s.SelfURL},
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
