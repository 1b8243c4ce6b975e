package demoapp_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/pki"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const (
	issuer   = "https://as.certbind.test"
	audience = "https://api.certbind.test"
)

type fixture struct {
	key     *ecdsa.PrivateKey
	billing *pki.Cert
	as      http.Handler
	logs    *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := pki.NewRoot("root", pki.ValidFor(t0.Add(-time.Hour), 24*time.Hour))
	f := &fixture{key: key, billing: root.Intermediate("inter").Leaf("billing"), logs: &bytes.Buffer{}}
	log := logrus.New()
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetOutput(f.logs)
	f.as = demoapp.NewAS(demoapp.ASConfig{Issuer: issuer, Audience: audience, Key: key, KeyID: "as-1",
		TokenTTL: 10 * time.Minute, Now: func() time.Time { return t0 }, Log: log})
	return f
}

// clientCert renders a certificate the way certbind hands it upstream (RFC 9440).
func clientCert(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }

// authenticated are the headers certbind sets after authenticating billing.
func (f *fixture) authenticated() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set(demoapp.HeaderClientID, "billing")
	h.Set(demoapp.HeaderClientCert, clientCert(f.billing.DER()))
	h.Set(demoapp.HeaderThumbprint, policy.ThumbprintOf(f.billing.DER()).String())
	return h
}

func (f *fixture) post(t *testing.T, form string, h http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, demoapp.PathToken, strings.NewReader(form))
	r.Header = h
	w := httptest.NewRecorder()
	f.as.ServeHTTP(w, r)
	return w
}

func (f *fixture) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.as.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func TestHeaderNamesMatchCertbind(t *testing.T) {
	for got, want := range map[string]string{
		demoapp.HeaderClientID:   extauthz.HeaderClientID,
		demoapp.HeaderThumbprint: extauthz.HeaderThumbprint,
		demoapp.HeaderClientCert: extauthz.HeaderClientCert,
	} {
		if got != want {
			t.Errorf("demoapp header %q, certbind sets %q", got, want)
		}
	}
}

// jwks fetches the server's JWK Set as a resource server would.
func (f *fixture) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	w := f.get(t, demoapp.PathJWKS)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("jwks: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w.Body.Bytes(), []byte(`"d"`)) {
		t.Fatal("jwks publishes private key material")
	}
	return set
}

// verify checks a token's signature with the published JWK Set and returns header and claims.
func (f *fixture) verify(t *testing.T, tok string) (jose.Header, demoapp.Claims) {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	h := jws.Signatures[0].Header
	set := f.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWK Set", h.KeyID, len(keys))
	}
	if keys[0].Algorithm != "ES256" || keys[0].Use != "sig" || !keys[0].IsPublic() {
		t.Errorf("published key: alg %q use %q public %v", keys[0].Algorithm, keys[0].Use, keys[0].IsPublic())
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
	var c demoapp.Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return h, c
}

func TestTokenIssued(t *testing.T) {
	f := newFixture(t)
	w := f.post(t, "grant_type=client_credentials&client_id=billing&scope=write+admin", f.authenticated())
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	for name, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	var resp map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp["token_type"] != "Bearer" || resp["expires_in"] != float64(600) || resp["scope"] != "write admin" || len(resp) != 4 {
		t.Errorf("response %v", resp)
	}
	tok, _ := resp["access_token"].(string)
	h, c := f.verify(t, tok)
	if h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID != "as-1" || h.Algorithm != "ES256" {
		t.Errorf("header: typ %v kid %q alg %q", h.ExtraHeaders["typ"], h.KeyID, h.Algorithm)
	}
	want := demoapp.Claims{Issuer: issuer, Subject: "billing", Audience: audience, ClientID: "billing",
		Scope: "write admin", IssuedAt: t0.Unix(), Expiry: t0.Add(10 * time.Minute).Unix(), ID: c.ID,
		Confirmation: demoapp.Confirmation{X5tS256: policy.ThumbprintOf(f.billing.DER()).String()}}
	if c != want {
		t.Errorf("claims\n got %+v\nwant %+v", c, want)
	}
	// RFC 8705 section 3.1: base64url without padding of SHA-256(DER): 43 characters.
	if x := c.Confirmation.X5tS256; len(x) != 43 || strings.ContainsAny(x, "+/=") {
		t.Errorf("cnf x5t#S256 %q is not base64url without padding", x)
	}
	if len(c.ID) < 20 {
		t.Errorf("jti %q too short to be unguessable", c.ID)
	}
	// The log line names the client and the thumbprint, never the token.
	if logs := f.logs.String(); !strings.Contains(logs, `"client_id":"billing"`) || !strings.Contains(logs, c.Confirmation.X5tS256) ||
		strings.Contains(logs, tok[:40]) {
		t.Errorf("log: %s", logs)
	}
}

func TestTokenWithoutOptionalHeadersAndIDs(t *testing.T) {
	// certbind always sets the thumbprint, but the client-cert is what the binding is computed
	// from; a client_id in the body is optional (it may have come in the Basic user name).
	f := newFixture(t)
	h := f.authenticated()
	h.Del(demoapp.HeaderThumbprint)
	w := f.post(t, "grant_type=client_credentials", h)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct{ form, want string }{
		{"", "read"},
		{"&scope=", "read"}, // RFC 6749 section 3.2: a parameter without value is omitted
		{"&scope=read", "read"},
		{"&scope=admin", "admin"},
		{"&scope=read%20write%20admin", "read write admin"},
		{"&scope=write+read+write", "write read"},
	} {
		f := newFixture(t)
		w := f.post(t, "grant_type=client_credentials"+tc.form, f.authenticated())
		if w.Code != http.StatusOK {
			t.Errorf("%q: status %d: %s", tc.form, w.Code, w.Body)
			continue
		}
		var resp demoapp.TokenResponse
		json.Unmarshal(w.Body.Bytes(), &resp)
		if resp.Scope != tc.want {
			t.Errorf("%q: response scope %q, want %q", tc.form, resp.Scope, tc.want)
		}
		if _, c := f.verify(t, resp.AccessToken); c.Scope != tc.want {
			t.Errorf("%q: token scope %q, want %q", tc.form, c.Scope, tc.want)
		}
	}
}

func TestTokenRefused(t *testing.T) {
	f := newFixture(t)
	der := f.billing.DER()
	b64 := base64.StdEncoding.EncodeToString(der)
	const ok = "grant_type=client_credentials"
	for _, tc := range []struct {
		name   string
		form   string
		edit   func(h http.Header)
		status int
		code   string
	}{
		{"wrong grant", "grant_type=authorization_code&code=x", nil, 400, "unsupported_grant_type"},
		{"password grant", "grant_type=password&username=a&password=b", nil, 400, "unsupported_grant_type"},
		{"no grant", "client_id=billing", nil, 400, "invalid_request"},
		{"repeated grant", ok + "&" + ok, nil, 400, "invalid_request"},
		{"json body", ok, func(h http.Header) { h.Set("Content-Type", "application/json") }, 400, "invalid_request"},
		{"no content-type", ok, func(h http.Header) { h.Del("Content-Type") }, 400, "invalid_request"},
		{"unknown scope", ok + "&scope=read+delete", nil, 400, "invalid_scope"},
		{"scope double space", ok + "&scope=read%20%20write", nil, 400, "invalid_scope"},
		{"scope leading space", ok + "&scope=%20read", nil, 400, "invalid_scope"},
		{"scope case", ok + "&scope=READ", nil, 400, "invalid_scope"},

		{"no client id", ok, func(h http.Header) { h.Del(demoapp.HeaderClientID) }, 401, "invalid_client"},
		{"empty client id", ok, func(h http.Header) { h.Set(demoapp.HeaderClientID, "") }, 401, "invalid_client"},
		{"two client ids", ok, func(h http.Header) { h.Add(demoapp.HeaderClientID, "reports") }, 401, "invalid_client"},
		{"body client_id differs", ok + "&client_id=reports", nil, 401, "invalid_client"},
		{"no client-cert", ok, func(h http.Header) { h.Del(demoapp.HeaderClientCert) }, 401, "invalid_client"},
		{"two client-certs", ok, func(h http.Header) { h.Add(demoapp.HeaderClientCert, clientCert(der)) }, 401, "invalid_client"},
		{"no colons", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, b64) }, 401, "invalid_client"},
		{"one colon", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, ":"+b64) }, 401, "invalid_client"},
		{"empty sequence", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, "::") }, 401, "invalid_client"},
		{"garbled", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, ":!!notbase64!!:") }, 401, "invalid_client"},
		{"base64url", ok, func(h http.Header) {
			h.Set(demoapp.HeaderClientCert, ":"+base64.URLEncoding.EncodeToString(der)+":")
		}, 401, "invalid_client"},
		{"not a certificate", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, ":Zm9vYmFy:") }, 401, "invalid_client"},
		{"trailing data", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, clientCert(append(der[:len(der):len(der)], 0))) }, 401, "invalid_client"},
		{"PEM", ok, func(h http.Header) { h.Set(demoapp.HeaderClientCert, string(f.billing.PEM())) }, 401, "invalid_client"},
		{"thumbprint of another cert", ok, func(h http.Header) {
			h.Set(demoapp.HeaderThumbprint, policy.ThumbprintOf([]byte("other")).String())
		}, 401, "invalid_client"},
		{"thumbprint in hex", ok, func(h http.Header) { h.Set(demoapp.HeaderThumbprint, policy.ThumbprintOf(der).Hex()) }, 401, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := f.authenticated()
			if tc.edit != nil {
				tc.edit(h)
			}
			w := f.post(t, tc.form, h)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tc.status || body.Error != tc.code {
				t.Errorf("got %d %q (%s), want %d %q", w.Code, body.Error, body.Description, tc.status, tc.code)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
		})
	}
}

func TestTokenEndpointMethod(t *testing.T) {
	f := newFixture(t)
	if w := f.get(t, demoapp.PathToken); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint: %d", w.Code)
	}
	big := "grant_type=client_credentials&pad=" + strings.Repeat("a", 64<<10)
	if w := f.post(t, big, f.authenticated()); w.Code != http.StatusBadRequest {
		t.Errorf("oversized body: %d", w.Code)
	}
}

func TestParseClientCert(t *testing.T) {
	f := newFixture(t)
	der := f.billing.DER()
	c, err := demoapp.ParseClientCert(" " + clientCert(der) + " ")
	if err != nil || !bytes.Equal(c.Raw, der) {
		t.Fatalf("ParseClientCert: %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString(der)
	for _, v := range []string{"", ":", "::", b64, ":" + b64, ":" + b64[:len(b64)-1] + ":", ":" + b64[:10] + "\n" + b64[10:] + ":",
		":" + b64 + ":;a=1", ":" + base64.RawStdEncoding.EncodeToString(der[:len(der)-1]) + ":"} {
		if _, err := demoapp.ParseClientCert(v); !errors.Is(err, demoapp.ErrClientCert) {
			t.Errorf("%.30q...: err %v, want ErrClientCert", v, err)
		}
	}
}

func TestTokensConcurrent(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := f.post(t, "grant_type=client_credentials", f.authenticated())
			var resp demoapp.TokenResponse
			json.Unmarshal(w.Body.Bytes(), &resp)
			jws, err := jose.ParseSigned(resp.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Error(err)
				return
			}
			var c demoapp.Claims
			json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
			ids[i] = c.ID
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("jti %q empty or repeated", id)
		}
		seen[id] = true
	}
}

func TestMetadata(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	as := demoapp.NewAS(demoapp.ASConfig{Issuer: "http://127.0.0.1:8443", Audience: audience, Key: key, KeyID: "k"})
	w := httptest.NewRecorder()
	as.ServeHTTP(w, httptest.NewRequest(http.MethodGet, demoapp.PathMetadata, nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]any{
		"issuer":         "http://127.0.0.1:8443",
		"token_endpoint": "http://127.0.0.1:8443/oauth2/token",
		"jwks_uri":       "http://127.0.0.1:8443/.well-known/jwks.json",
		"tls_client_certificate_bound_access_tokens": true,
	} {
		if md[name] != want {
			t.Errorf("%s: %v, want %v", name, md[name], want)
		}
	}
	methods, _ := json.Marshal(md["token_endpoint_auth_methods_supported"])
	if string(methods) != `["tls_client_auth","self_signed_tls_client_auth"]` {
		t.Errorf("token_endpoint_auth_methods_supported: %s", methods)
	}
	grants, _ := json.Marshal(md["grant_types_supported"])
	if string(grants) != `["client_credentials"]` {
		t.Errorf("grant_types_supported: %s", grants)
	}
}

func TestASConfigValidate(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good := demoapp.ASConfig{Issuer: issuer, Audience: audience, Key: key, KeyID: "as-1"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*demoapp.ASConfig)
		want string
	}{
		{"no issuer", func(c *demoapp.ASConfig) { c.Issuer = "" }, "issuer:"},
		{"issuer path", func(c *demoapp.ASConfig) { c.Issuer = issuer + "/tenant" }, "issuer:"},
		{"issuer trailing slash", func(c *demoapp.ASConfig) { c.Issuer = issuer + "/" }, "issuer:"},
		{"issuer query", func(c *demoapp.ASConfig) { c.Issuer = issuer + "?" }, "issuer:"},
		{"issuer fragment", func(c *demoapp.ASConfig) { c.Issuer = issuer + "#x" }, "issuer:"},
		{"issuer scheme", func(c *demoapp.ASConfig) { c.Issuer = "ftp://as" }, "issuer:"},
		{"no audience", func(c *demoapp.ASConfig) { c.Audience = "" }, "audience:"},
		{"no key", func(c *demoapp.ASConfig) { c.Key = nil }, "key:"},
		{"P-384 key", func(c *demoapp.ASConfig) { c.Key = p384 }, "key:"},
		{"no kid", func(c *demoapp.ASConfig) { c.KeyID = "" }, "key_id:"},
		{"negative ttl", func(c *demoapp.ASConfig) { c.TokenTTL = -time.Second }, "token_ttl:"},
		{"sub-second ttl", func(c *demoapp.ASConfig) { c.TokenTTL = 1500 * time.Millisecond }, "token_ttl:"},
	} {
		c := good
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewAS with an invalid config did not panic")
		}
	}()
	demoapp.NewAS(demoapp.ASConfig{})
}

// FuzzParseClientCert: whatever is accepted is exactly the canonical RFC 9440 rendering of the
// certificate it yields, so two different header values never name the same certificate.
func FuzzParseClientCert(f *testing.F) {
	root := pki.NewRoot("root", pki.ValidFor(t0, time.Hour))
	der := root.Leaf("billing").DER()
	f.Add(clientCert(der))
	f.Add(" " + clientCert(der) + " ")
	f.Add(":" + base64.RawStdEncoding.EncodeToString(der) + ":")
	f.Add(":Zm9v:")
	f.Add("::")
	f.Add(":" + base64.StdEncoding.EncodeToString(der)[:64] + "\r\n" + base64.StdEncoding.EncodeToString(der)[64:] + ":")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := demoapp.ParseClientCert(v)
		if err != nil {
			if !errors.Is(err, demoapp.ErrClientCert) {
				t.Fatalf("error %v is not ErrClientCert", err)
			}
			return
		}
		if canon := clientCert(c.Raw); strings.Trim(v, " ") != canon {
			t.Fatalf("accepted %q, canonical form %q", v, canon)
		}
	})
}
