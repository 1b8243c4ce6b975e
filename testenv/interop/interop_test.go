package interop

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/testbed"
)

// suite is what every scenario shares: the authorization server, its clients, the proxies.
type suite struct {
	dir     string
	as      *authServer
	clients map[string]oauthClient // by test bed certificate name, and dpopClient
	fronts  []front
}

func setup(t *testing.T) *suite {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := testbed.GeneratePKI(pki, time.Now(), 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	as := startAS(t, dir, asConfig{
		TLSCert: filepath.Join(pki, testbed.FileEnvoyCert), TLSKey: filepath.Join(pki, testbed.FileEnvoyKey),
		ClientCA: filepath.Join(pki, testbed.FileCA),
		Providers: []asProvider{
			{Name: provMain, Keys: []json.RawMessage{signingKey(t, "main-1")}},
			{Name: provOther, Keys: []json.RawMessage{signingKey(t, "other-1")}},
			{Name: provStranger, Keys: []json.RawMessage{signingKey(t, "stranger-1")}},
		},
		Clients: asClients(t, pki),
		Resources: map[string]asResourceServe{
			jwtAPI:    {Format: "jwt", Scope: "read write"},
			opaqueAPI: {Format: "opaque", Scope: "read write"},
		},
	})
	s := &suite{dir: dir, as: as, clients: map[string]oauthClient{}}
	for _, name := range testbed.Clients() {
		s.clients[name] = oauthClient{node: node, ca: filepath.Join(pki, testbed.FileCA),
			cert: filepath.Join(pki, testbed.CertFile(name)), key: filepath.Join(pki, testbed.KeyFile(name))}
	}
	s.clients[dpopClient] = oauthClient{node: node, ca: filepath.Join(pki, testbed.FileCA)} // no certificate
	return s
}

// issuer is the main provider's issuer, which every token of the proxies' token endpoint has.
func (s *suite) issuer() string { return s.as.Providers[provMain].Issuer }

// TestInterop runs certbind with a real authorization server (oidc-provider) and a real OAuth
// client (openid-client), behind the real nginx and behind the Envoy stand-in.
func TestInterop(t *testing.T) {
	s := setup(t)
	s.fronts = startFronts(t, s.dir, s.as, certbindConfig(s.as, introspectBasic, ""))
	for _, f := range s.fronts {
		t.Run(f.name, func(t *testing.T) {
			t.Run("tls_client_auth", func(t *testing.T) { s.tlsClientAuth(t, f) })
			t.Run("self_signed_tls_client_auth", func(t *testing.T) { s.selfSigned(t, f) })
			t.Run("wrong client_id refused before the AS", func(t *testing.T) { s.wrongClientID(t, f) })
			t.Run("opaque token, introspection with client_secret_basic", func(t *testing.T) { s.opaque(t, f) })
			t.Run("JWT through a configured jwks_uri", func(t *testing.T) { s.otherIssuer(t, f) })
			t.Run("unknown issuer", func(t *testing.T) { s.unknownIssuer(t, f) })
			t.Run("DPoP", func(t *testing.T) { s.dpop(t, f) })
		})
	}
	t.Run("DPoP proof replayed at the other replica, store: memory", func(t *testing.T) { s.dpopReplicas(t, false) })
	t.Run("key rotation", func(t *testing.T) { s.keyRotation(t) })
}

// TestInteropIntrospectionMTLS: certbind authenticates to the introspection endpoint with its
// client certificate (RFC 8705 tls_client_auth: client_id in the form, no Authorization).
func TestInteropIntrospectionMTLS(t *testing.T) {
	s := setup(t)
	s.fronts = startFronts(t, s.dir, s.as, certbindConfig(s.as, introspectMTLS, ""))
	for _, f := range s.fronts {
		t.Run(f.name, func(t *testing.T) { s.opaque(t, f) })
	}
}

// tlsClientAuth: each PKI client, by subject DN, URI SAN and DNS SAN, gets a bound JWT at the
// proxy's token endpoint with an unmodified client library (client_id in the form body), uses
// it at the API, and the same token with another client's certificate is refused.
func (s *suite) tlsClientAuth(t *testing.T, f front) {
	for _, name := range []string{testbed.Billing, testbed.Reports, testbed.Inventory} {
		t.Run(name, func(t *testing.T) {
			c := s.clients[name]
			tok := c.token(t, s.issuer(), f.base+"/oauth2/token", name, "tls_client_auth", jwtAPI)
			if !tok.OK {
				t.Fatalf("token: %+v", tok)
			}
			if got := c.call(t, f.base+"/api/orders", tok.AccessToken); got.Status != 200 || !strings.Contains(got.Body, `"x-certbind-client-id":"`+name+`"`) {
				t.Fatalf("API with its own certificate: %+v", got)
			}
			other := testbed.Reports
			if name == testbed.Reports {
				other = testbed.Billing
			}
			replay := s.clients[other].call(t, f.base+"/api/orders", tok.AccessToken)
			if !f.denied(replay, 401, policy.ReasonTokenBindingMismatch) || !strings.Contains(replay.WWWAuthenticate, `error="invalid_token"`) {
				t.Fatalf("token replayed with %s's certificate: %+v", other, replay)
			}
		})
	}
}

// selfSigned: a self_signed_tls_client_auth client through the proxy's self-signed server.
func (s *suite) selfSigned(t *testing.T, f front) {
	c := s.clients[testbed.Partner]
	tok := c.token(t, s.issuer(), f.selfBase+"/oauth2/token", testbed.Partner, "self_signed_tls_client_auth", jwtAPI)
	if !tok.OK {
		t.Fatalf("token: %+v", tok)
	}
	if got := c.call(t, f.selfBase+"/api/orders", tok.AccessToken); got.Status != 200 {
		t.Fatalf("API: %+v", got)
	}
	if got := s.clients[testbed.Billing].call(t, f.base+"/api/orders", tok.AccessToken); !f.denied(got, 401, policy.ReasonTokenBindingMismatch) {
		t.Fatalf("partner's token with billing's certificate: %+v", got)
	}
}

// wrongClientID: a certificate with another client's client_id is refused by certbind
// (X-Certbind-Reason), before the authorization server.
func (s *suite) wrongClientID(t *testing.T, f front) {
	tok := s.clients[testbed.Reports].token(t, s.issuer(), f.base+"/oauth2/token", testbed.Billing, "tls_client_auth", jwtAPI)
	if tok.OK || tok.Status != 401 || tok.Error != "invalid_client" || !f.deniedBy(tok.Reason, tok.Description, policy.ReasonCertificateUnbound) {
		t.Fatalf("reports' certificate with client_id billing: %+v", tok)
	}
}

// opaque: an opaque bound token, verified by introspection.
func (s *suite) opaque(t *testing.T, f front) {
	c := s.clients[testbed.Billing]
	tok := c.token(t, s.issuer(), f.base+"/oauth2/token", testbed.Billing, "tls_client_auth", opaqueAPI)
	if !tok.OK || strings.Count(tok.AccessToken, ".") == 2 {
		t.Fatalf("opaque token: %+v", tok)
	}
	if got := c.call(t, f.base+"/api/orders", tok.AccessToken); got.Status != 200 {
		t.Fatalf("API: %+v", got)
	}
	if got := s.clients[testbed.Inventory].call(t, f.base+"/api/orders", tok.AccessToken); !f.denied(got, 401, policy.ReasonTokenBindingMismatch) {
		t.Fatalf("replayed with inventory's certificate: %+v", got)
	}
	if got := c.call(t, f.base+"/api/orders", tok.AccessToken+"x"); !f.denied(got, 401, policy.ReasonTokenInactive) {
		t.Fatalf("an unknown opaque token: %+v", got)
	}
}

// otherIssuer: a JWT of the second provider, fetched directly from it over mutual TLS, is
// verified with the keys of its configured jwks_uri.
func (s *suite) otherIssuer(t *testing.T, f front) {
	other := s.as.Providers[provOther].Issuer
	c := s.clients[testbed.Inventory]
	tok := c.token(t, other, other+"/oauth2/token", testbed.Inventory, "tls_client_auth", jwtAPI)
	if !tok.OK {
		t.Fatalf("token: %+v", tok)
	}
	if got := c.call(t, f.base+"/api/orders", tok.AccessToken); got.Status != 200 {
		t.Fatalf("API: %+v", got)
	}
}

// unknownIssuer: a bound JWT of an authorization server certbind does not know.
func (s *suite) unknownIssuer(t *testing.T, f front) {
	stranger := s.as.Providers[provStranger].Issuer
	c := s.clients[testbed.Billing]
	tok := c.token(t, stranger, stranger+"/oauth2/token", testbed.Billing, "tls_client_auth", jwtAPI)
	if !tok.OK {
		t.Fatalf("token: %+v", tok)
	}
	if got := c.call(t, f.base+"/api/orders", tok.AccessToken); !f.denied(got, 401, policy.ReasonTokenIssuer) {
		t.Fatalf("API: %+v", got)
	}
}

// keyRotation: the main provider adds a key and signs with it (certbind fetches the new kid),
// then removes the old one: tokens of the old key are refused at the next key-set refresh,
// also those certbind verified (and cached) before.
func (s *suite) keyRotation(t *testing.T) {
	c := s.clients[testbed.Billing]
	get := func(f front) string {
		tok := c.token(t, s.issuer(), f.base+"/oauth2/token", testbed.Billing, "tls_client_auth", jwtAPI)
		if !tok.OK {
			t.Fatalf("token through %s: %+v", f.name, tok)
		}
		return tok.AccessToken
	}
	first := s.fronts[0]
	old := get(first)
	for _, f := range s.fronts {
		if got := c.call(t, f.base+"/api/orders", old); got.Status != 200 {
			t.Fatalf("%s: the first key's token: %+v", f.name, got)
		}
	}
	oldKey := s.as.currentKey(provMain)
	newKey := signingKey(t, "main-2")
	s.as.setKeys(t, provMain, newKey, oldKey)
	fresh := get(first)
	if kid(t, fresh) != "main-2" {
		t.Fatalf("the new token's kid is %q", kid(t, fresh))
	}
	for _, f := range s.fronts {
		if got := c.call(t, f.base+"/api/orders", fresh); got.Status != 200 {
			t.Fatalf("%s: the new key's token: %+v", f.name, got)
		}
		if got := c.call(t, f.base+"/api/orders", old); got.Status != 200 {
			t.Fatalf("%s: the old key's token while both are published: %+v", f.name, got)
		}
	}
	s.as.setKeys(t, provMain, newKey)
	for _, f := range s.fronts {
		var last callResult
		if !waitFor(15*time.Second, func() bool {
			last = c.call(t, f.base+"/api/orders", old)
			return last.Status == 401
		}) {
			t.Fatalf("%s: the removed key's token still works: %+v", f.name, last)
		}
		if !f.denied(last, 401, policy.ReasonTokenUnknownKey) {
			t.Errorf("%s: the removed key's token refused with %+v", f.name, last)
		}
		if got := c.call(t, f.base+"/api/orders", fresh); got.Status != 200 {
			t.Fatalf("%s: the new key's token after the removal: %+v", f.name, got)
		}
	}
}

// kid is the kid of a JWT's header.
func kid(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	data, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(data, &h) != nil {
		t.Fatalf("not a JWT header: %q", head)
	}
	return h.Kid
}
