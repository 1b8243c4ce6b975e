package policy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/certbind/certbind/policy/jwks"
	"github.com/certbind/certbind/policy/token"
)

// Binding says how an access token must be sender-constrained: to the request's client
// certificate (RFC 8705 section 3, cnf x5t#S256), to the key of a DPoP proof (RFC 9449, cnf
// jkt), or either. Whatever the binding accepts, every binding a token carries is enforced: a
// token with both x5t#S256 and jkt needs the certificate and the proof.
type Binding string

// Bindings.
const (
	BindingCertificate Binding = "certificate" // cnf x5t#S256 required
	BindingDPoP        Binding = "dpop"        // cnf jkt required
	BindingEither      Binding = "either"      // x5t#S256 or jkt (or both) required
	BindingBoth        Binding = "both"        // x5t#S256 and jkt required
	BindingOptional    Binding = "optional"    // unbound tokens pass; bound tokens are enforced (migrations)
	// BindingRequired is the name certificate had before DPoP: it still means certificate.
	BindingRequired Binding = "required"
)

// bindingNames is what a configuration may write, for error messages.
const bindingNames = "certificate, dpop, either, both or optional (required is certificate)"

func parseBinding(s string) (Binding, bool) {
	switch b := Binding(s); b {
	case BindingRequired:
		return BindingCertificate, true
	case BindingCertificate, BindingDPoP, BindingEither, BindingBoth, BindingOptional:
		return b, true
	}
	return "", false
}

// accepts reports whether a token bound by certificate (x5t) and/or DPoP (jkt) meets b.
func (b Binding) accepts(x5t, jkt bool) bool {
	switch b {
	case BindingCertificate:
		return x5t
	case BindingDPoP:
		return jkt
	case BindingEither:
		return x5t || jkt
	case BindingBoth:
		return x5t && jkt
	case BindingOptional:
		return true
	}
	return false
}

// schemes are the authentication schemes a binding lets a client use: Bearer for a
// certificate-bound (or unbound) token, DPoP for a DPoP-bound one.
func (b Binding) schemes() Schemes {
	switch b {
	case BindingCertificate:
		return SchemeBearer
	case BindingDPoP, BindingBoth:
		return SchemeDPoP
	}
	return SchemeBearer | SchemeDPoP
}

// tokenSettings is the compiled tokens section.
type tokenSettings struct {
	realm         string
	forwardAuthz  bool
	verifier      *token.Verifier
	issuers       map[string]issuerPolicy
	introspector  *token.Introspector
	introspection issuerPolicy
	// introspectUnknown sends a JWT whose issuer is not configured to introspection
	// (tokens.introspection.jwt_unknown_issuers: introspect) instead of refusing it.
	introspectUnknown bool
	// dpop checks DPoP proofs (always set in a valid configuration).
	dpop *dpopSettings
}

type issuerPolicy struct {
	binding            Binding
	requireClientMatch bool
}

// Response is what rendering needs from the configuration.
type Response struct {
	Realm                string // WWW-Authenticate realm; "" for none
	ForwardAuthorization bool   // whether the upstream sees the Authorization header
	DPoPAlgorithms       string // a DPoP challenge's algs parameter: the accepted proof algorithms
}

// AcceptsDPoP reports whether some issuer, the introspection endpoint or a route accepts
// DPoP-bound tokens.
func (c *Config) AcceptsDPoP() bool {
	if c.tokens == nil {
		return false
	}
	if c.tokens.offered(nil)&SchemeDPoP != 0 {
		return true
	}
	for i := range c.routes {
		if c.routes[i].binding != "" && c.routes[i].binding.schemes()&SchemeDPoP != 0 {
			return true
		}
	}
	return false
}

// Response returns the response settings.
func (c *Config) Response() Response {
	if c.tokens == nil {
		return Response{ForwardAuthorization: true}
	}
	r := Response{Realm: c.tokens.realm, ForwardAuthorization: c.tokens.forwardAuthz}
	if c.tokens.dpop != nil {
		r.DPoPAlgorithms = c.tokens.dpop.algs
	}
	return r
}

func (b *builder) tokens(t *fileTokens, c *Config) *tokenSettings {
	ts := &tokenSettings{realm: t.Realm, forwardAuthz: *t.ForwardAuthorization, issuers: map[string]issuerPolicy{}}
	if strings.ContainsAny(t.Realm, "\"\\\r\n") {
		b.errf("tokens.realm", "must not contain quotes, backslashes or line breaks")
	}
	if t.MaxTokenBytes < 0 {
		b.errf("tokens.max_token_bytes", "must be positive")
	}
	var issuers []*token.Issuer
	for i := range t.Issuers {
		path := fmt.Sprintf("tokens.issuers[%d]", i)
		fi := &t.Issuers[i]
		is := b.issuer(path, fi, c)
		if is == nil {
			continue
		}
		if _, dup := ts.issuers[fi.Issuer]; dup {
			b.errf(path+".issuer", "duplicate issuer %q", fi.Issuer)
			continue
		}
		bind, ok := parseBinding(fi.Binding)
		if !ok {
			b.errf(path+".binding", "%q: want %s", fi.Binding, bindingNames)
		}
		ts.issuers[fi.Issuer] = issuerPolicy{binding: bind, requireClientMatch: fi.RequireClientMatch}
		issuers = append(issuers, is)
	}
	ts.verifier = token.NewVerifier(issuers, t.MaxTokenBytes)
	ts.dpop = b.dpop(&t.DPoP)
	if in := t.Introspection; in != nil {
		ts.introspector = b.introspector("tokens.introspection", in)
		bind, ok := parseBinding(in.Binding)
		if !ok {
			b.errf("tokens.introspection.binding", "%q: want %s", in.Binding, bindingNames)
		}
		ts.introspection = issuerPolicy{binding: bind, requireClientMatch: in.RequireClientMatch}
		switch in.UnknownIssuers {
		case "introspect":
			ts.introspectUnknown = true
		case "refuse":
		default:
			b.errf("tokens.introspection.jwt_unknown_issuers", "%q: want refuse or introspect", in.UnknownIssuers)
		}
	}
	return ts
}

func (b *builder) issuer(path string, fi *fileIssuer, c *Config) *token.Issuer {
	u, err := url.Parse(fi.Issuer)
	if fi.Issuer == "" || err != nil || u.Scheme == "" || u.Host == "" {
		b.errf(path+".issuer", "%q is not an issuer URL", fi.Issuer)
		return nil
	}
	is := &token.Issuer{Issuer: fi.Issuer, Audiences: fi.Audiences, Types: fi.Types,
		AllowMissingType: fi.AllowMissingType, Leeway: fi.Leeway}
	if len(fi.Audiences) == 0 {
		b.errf(path+".audiences", "at least one audience is required (RFC 9068 section 4: the resource server must check aud)")
	}
	for j, a := range fi.Algorithms {
		if !token.AsymmetricAlgorithm(a) {
			b.errf(fmt.Sprintf("%s.algorithms[%d]", path, j), "%q: allowed are RS256/384/512, PS256/384/512, ES256/384/512, EdDSA (never none or HMAC)", a)
			continue
		}
		is.Algorithms = append(is.Algorithms, jose.SignatureAlgorithm(a))
	}
	if fi.Leeway < 0 || fi.Leeway > 10*time.Minute {
		b.errf(path+".leeway", "%s: want between 0 and 10m", fi.Leeway)
	}
	sources := 0
	for _, set := range []bool{!fi.JWKS.IsZero(), fi.JWKSFile != "", fi.JWKSURI != "", fi.Discovery} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		b.errf(path, "needs exactly one of jwks, jwks_file, jwks_uri, discovery; found %d", sources)
		return nil
	}
	tlsSet := fileTLS{CA: fi.TLSCA, Cert: fi.TLSCert, Key: fi.TLSKey}
	if tlsSet != (fileTLS{}) && !fi.Discovery && fi.JWKSURI == "" {
		b.errf(path, "tls_ca, tls_cert and tls_key apply to jwks_uri and discovery fetches")
		return nil
	}
	client, ok := b.tlsClient(path, "tls_", tlsSet)
	if !ok {
		return nil
	}
	switch {
	case fi.Discovery:
		is.Keys = token.NewDiscoveredKeys(fi.Issuer, b.remoteOptions(c, fi.Issuer, client))
	case fi.JWKSURI != "":
		if is.Keys = b.remoteKeys(path, fi.JWKSURI, fi.Issuer, c, client); is.Keys == nil {
			return nil
		}
	default:
		set, _, ok := b.staticKeys(path, fi.JWKS, fi.JWKSFile)
		if !ok {
			return nil
		}
		is.Keys = jwks.NewStatic(set)
	}
	return is
}

func (b *builder) introspector(path string, in *fileIntrospection) *token.Introspector {
	if !isHTTPURL(in.Endpoint) {
		b.errf(path+".endpoint", "%q is not an http(s) URL", in.Endpoint)
		return nil
	}
	secret := in.ClientSecret
	if in.ClientSecretFile != "" {
		if secret != "" {
			b.errf(path, "client_secret and client_secret_file are exclusive")
			return nil
		}
		data, ok := b.readFile(path+".client_secret_file", in.ClientSecretFile)
		if !ok {
			return nil
		}
		secret = strings.TrimSpace(string(data))
	}
	mtls := in.TLSCert != "" || in.TLSKey != ""
	if in.ClientID == "" && !mtls {
		b.errf(path, "configure client authentication: client_id with client_secret (client_secret_basic), or client_id with tls_cert and tls_key (mutual TLS)")
		return nil
	}
	if in.ClientID == "" {
		b.errf(path+".client_id", "missing: with mutual TLS, certbind names itself with client_id in the request body (RFC 8705 section 2)")
		return nil
	}
	if in.ClientID != "" && secret == "" && !mtls {
		b.errf(path+".client_secret", "missing for client_secret_basic")
		return nil
	}
	client, ok := b.tlsClient(path, "tls_", fileTLS{CA: in.TLSCA, Cert: in.TLSCert, Key: in.TLSKey})
	if !ok {
		return nil
	}
	if client == nil {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}}
	}
	client = b.instrument(client, 0) // the introspector bounds each call itself
	if in.CacheSize < 0 {
		b.errf(path+".cache_size", "must be positive")
	}
	// With a secret, client_secret_basic; with mutual TLS alone (RFC 8705 section 2 as the
	// client), client_id in the form and no Authorization header.
	return token.NewIntrospector(token.IntrospectorConfig{
		Endpoint: in.Endpoint, Client: client, ClientID: in.ClientID, ClientSecret: secret,
		Timeout: in.Timeout, CacheTTL: in.CacheTTL, CacheSize: in.CacheSize, Leeway: in.Leeway, OnCall: func(err error) { b.obs.ObserveFetch("introspection", in.Endpoint, err) },
		Issuer: in.Issuer, Audiences: in.Audiences,
	})
}

func (b *builder) inlineOrFile(path string, inline yaml.Node, file string) ([]byte, string, bool) {
	if !inline.IsZero() {
		var v any
		if err := inline.Decode(&v); err != nil {
			b.errf(path+".jwks", "%v", err)
			return nil, "", false
		}
		j, err := json.Marshal(v)
		if err != nil {
			b.errf(path+".jwks", "not representable as JSON: %v", err)
			return nil, "", false
		}
		return j, path + ".jwks", true
	}
	d, ok := b.readFile(path+".jwks_file", file)
	return d, path + ".jwks_file", ok
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// fileTLS is how certbind connects to one of the authorization server's endpoints: a private
// CA to trust (tls_ca), and a client certificate to present (tls_cert, tls_key).
type fileTLS struct{ CA, Cert, Key string }

// tlsClient builds the HTTP client of t, reading its files like every other file of the
// configuration (so a change reloads it); nil when t sets nothing, for the default client. ok
// is false when t has errors, reported under path and the keys prefix+"ca", "cert", "key".
func (b *builder) tlsClient(path, prefix string, t fileTLS) (*http.Client, bool) {
	tc, ok := b.tlsConfig(path, prefix, t)
	if tc == nil {
		return nil, ok
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}, true
}

// tlsConfig is tlsClient's TLS configuration: nil when t sets nothing or has errors (ok false).
func (b *builder) tlsConfig(path, prefix string, t fileTLS) (*tls.Config, bool) {
	if t.CA == "" && t.Cert == "" && t.Key == "" {
		return nil, true
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Cert != "" || t.Key != "" {
		if t.Cert == "" || t.Key == "" {
			b.errf(path, "%scert and %skey go together", prefix, prefix)
			return nil, false
		}
		certPEM, ok1 := b.readFile(path+"."+prefix+"cert", t.Cert)
		keyPEM, ok2 := b.readFile(path+"."+prefix+"key", t.Key)
		if !ok1 || !ok2 {
			return nil, false
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			b.errf(path+"."+prefix+"cert", "%v", err)
			return nil, false
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if t.CA != "" {
		certs := b.readCerts(path+"."+prefix+"ca", t.CA)
		if certs == nil {
			return nil, false
		}
		tc.RootCAs = x509.NewCertPool()
		for _, c := range certs {
			tc.RootCAs.AddCert(c)
		}
	}
	return tc, true
}
