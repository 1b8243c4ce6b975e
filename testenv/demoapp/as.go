package demoapp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/policy"
)

// Headers certbind sets upstream on allow (the same names as extauthz.Header*; this package
// does not import the gRPC adapter).
const (
	HeaderClientID   = "x-certbind-client-id"
	HeaderThumbprint = "x-certbind-cert-thumbprint"
	HeaderClientCert = "client-cert" // RFC 9440 section 2
)

// Paths of the authorization server; the metadata's URLs are the issuer followed by these.
const (
	PathToken    = "/oauth2/token"
	PathJWKS     = "/.well-known/jwks.json"
	PathMetadata = "/.well-known/oauth-authorization-server" // RFC 8414 section 3
)

// Scopes the authorization server grants, and the one it grants when none is requested.
const (
	ScopeRead    = "read"
	ScopeWrite   = "write"
	ScopeAdmin   = "admin"
	DefaultScope = ScopeRead
)

// DefaultTokenTTL is the access token lifetime when ASConfig.TokenTTL is zero.
const DefaultTokenTTL = 5 * time.Minute

// TokenType is the JWT typ of the access tokens (RFC 9068 section 2.1).
const TokenType = "at+jwt"

// maxFormBytes bounds a token request body.
const maxFormBytes = 16 << 10

var knownScopes = map[string]bool{ScopeRead: true, ScopeWrite: true, ScopeAdmin: true}

// ASConfig is what the authorization server needs.
type ASConfig struct {
	// Issuer is the iss of the tokens and the base of every metadata URL: an http(s) URL with
	// a host and no path, query or fragment (the handler serves its endpoints at the root).
	Issuer string
	// Audience is the aud of the tokens: the resource server that accepts them.
	Audience string
	// Key signs the tokens (ES256, so a P-256 key); KeyID is its kid in the JWK Set.
	Key   *ecdsa.PrivateKey
	KeyID string
	// TokenTTL is the tokens' lifetime; zero means DefaultTokenTTL. Whole seconds.
	TokenTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives one line per token request; nil discards. Tokens are never logged.
	Log logrus.FieldLogger
}

func (c ASConfig) withDefaults() ASConfig {
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		c.Log = l
	}
	return c
}

// Validate reports every problem of the configuration, each naming its field.
func (c ASConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.Path != "" || strings.ContainsAny(c.Issuer, "?#") {
		errs = append(errs, fmt.Errorf("issuer: %q: want an http(s) URL with a host and no path, query or fragment", c.Issuer))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience: required"))
	}
	if c.Key == nil {
		errs = append(errs, errors.New("key: required"))
	} else if c.Key.Curve != elliptic.P256() {
		errs = append(errs, errors.New("key: ES256 needs a P-256 key"))
	}
	if c.KeyID == "" {
		errs = append(errs, errors.New("key_id: required"))
	}
	if c.TokenTTL < time.Second || c.TokenTTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("token_ttl: %s: want whole seconds, at least 1s", c.TokenTTL))
	}
	return errors.Join(errs...)
}

// as is the authorization server: configuration compiled once, read-only per request.
type as struct {
	cfg      ASConfig
	signer   jose.Signer
	jwks     []byte
	metadata []byte
}

// NewAS returns the authorization server's handler. It panics if c.Validate fails: validate
// configuration read from outside first.
//
// The token endpoint trusts certbind's upstream headers; see the package documentation.
func NewAS(c ASConfig) http.Handler {
	if err := c.Validate(); err != nil {
		panic("demoapp: NewAS: " + err.Error())
	}
	a := &as{cfg: c.withDefaults()}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: c.Key, KeyID: c.KeyID}},
		(&jose.SignerOptions{}).WithType(TokenType))
	if err != nil {
		panic("demoapp: NewAS: " + err.Error()) // unreachable for a validated P-256 key
	}
	a.signer = signer
	a.jwks = mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &c.Key.PublicKey, KeyID: c.KeyID, Algorithm: string(jose.ES256), Use: "sig"},
	}})
	a.metadata = mustJSON(Metadata{
		Issuer:                   c.Issuer,
		TokenEndpoint:            c.Issuer + PathToken,
		JWKSURI:                  c.Issuer + PathJWKS,
		ScopesSupported:          []string{ScopeRead, ScopeWrite, ScopeAdmin},
		ResponseTypesSupported:   []string{},
		GrantTypesSupported:      []string{"client_credentials"},
		TokenEndpointAuthMethods: []string{"tls_client_auth", "self_signed_tls_client_auth"},
		TLSClientCertBoundTokens: true,
	})

	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathToken, a.token)
	mux.HandleFunc("GET "+PathJWKS, serveJSON(a.jwks))
	mux.HandleFunc("GET "+PathMetadata, serveJSON(a.metadata))
	return mux
}

// Metadata is the authorization server metadata (RFC 8414 section 2; RFC 8705 section 3.3).
type Metadata struct {
	Issuer                 string   `json:"issuer"`
	TokenEndpoint          string   `json:"token_endpoint"`
	JWKSURI                string   `json:"jwks_uri"`
	ScopesSupported        []string `json:"scopes_supported"`
	ResponseTypesSupported []string `json:"response_types_supported"` // required; empty: no authorization endpoint
	GrantTypesSupported    []string `json:"grant_types_supported"`
	// TokenEndpointAuthMethods: RFC 8705 section 2.1.1 and 2.2.1.
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	// TLSClientCertBoundTokens: RFC 8705 section 3.3.
	TLSClientCertBoundTokens bool `json:"tls_client_certificate_bound_access_tokens"`
}

// Claims are the claims of an issued access token (RFC 9068 section 2.2, RFC 8705 section 3.1).
type Claims struct {
	Issuer       string       `json:"iss"`
	Subject      string       `json:"sub"` // the client: no resource owner in client_credentials
	Audience     string       `json:"aud"`
	ClientID     string       `json:"client_id"`
	Scope        string       `json:"scope"`
	IssuedAt     int64        `json:"iat"`
	Expiry       int64        `json:"exp"`
	ID           string       `json:"jti"`
	Confirmation Confirmation `json:"cnf"`
}

// Confirmation binds a token to the client certificate (RFC 8705 section 3.1).
type Confirmation struct {
	X5tS256 string `json:"x5t#S256"`
}

// TokenResponse is the successful token response (RFC 6749 section 5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthError is a token endpoint error response (RFC 6749 section 5.2).
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func invalidRequest(format string, args ...any) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

func invalidClient(format string, args ...any) *oauthError {
	return &oauthError{http.StatusUnauthorized, "invalid_client", fmt.Sprintf(format, args...)}
}

// tokenRequest is a token request read and checked: who asks, with which certificate, for
// which scopes.
type tokenRequest struct {
	clientID   string
	thumbprint policy.Thumbprint
	scopes     []string
}

func (a *as) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	req, oerr := readTokenRequest(r)
	log := a.cfg.Log.WithField("client_id", req.clientID)
	if oerr != nil {
		log.WithFields(logrus.Fields{"error": oerr.Code, "description": oerr.Description}).Info("token request refused")
		writeJSON(w, oerr.status, oerr)
		return
	}
	claims := a.claims(req)
	tok, err := a.sign(claims)
	if err != nil {
		log.WithError(err).Error("signing access token")
		writeJSON(w, http.StatusInternalServerError, &oauthError{Code: "server_error"})
		return
	}
	log.WithFields(logrus.Fields{"scope": claims.Scope, "jti": claims.ID, "cert_thumbprint": claims.Confirmation.X5tS256,
		"exp": claims.Expiry}).Info("access token issued")
	writeJSON(w, http.StatusOK, TokenResponse{AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: claims.Expiry - claims.IssuedAt, Scope: claims.Scope})
}

// readTokenRequest reads a client_credentials token request (RFC 6749 section 4.4.2) whose
// client certbind has authenticated. Errors are RFC 6749 section 5.2 responses.
func readTokenRequest(r *http.Request) (tokenRequest, *oauthError) {
	var req tokenRequest
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
		return req, invalidRequest("content-type %q: want application/x-www-form-urlencoded", ct)
	}
	if err := r.ParseForm(); err != nil {
		return req, invalidRequest("unreadable form body")
	}
	form := r.PostForm
	// RFC 6749 section 3.2: parameters must not be repeated, and one sent without a value is
	// treated as omitted.
	for name, vals := range form {
		if len(vals) > 1 {
			return req, invalidRequest("parameter %s repeated", name)
		}
	}

	ids := r.Header.Values(HeaderClientID)
	if len(ids) != 1 || ids[0] == "" {
		return req, invalidClient("client not authenticated")
	}
	req.clientID = ids[0]
	if id := form.Get("client_id"); id != "" && id != req.clientID {
		return req, invalidClient("client_id does not match the authenticated client")
	}
	certs := r.Header.Values(HeaderClientCert)
	if len(certs) != 1 {
		return req, invalidClient("client certificate missing")
	}
	cert, err := ParseClientCert(certs[0])
	if err != nil {
		return req, invalidClient("client certificate unreadable")
	}
	req.thumbprint = policy.ThumbprintOf(cert.Raw)
	if tps := r.Header.Values(HeaderThumbprint); len(tps) > 1 || (len(tps) == 1 && !req.thumbprint.MatchesX5tS256(tps[0])) {
		return req, invalidClient("certificate thumbprint does not match the client certificate")
	}

	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return req, invalidRequest("grant_type missing")
	default:
		return req, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported"}
	}
	scopes, err := parseScope(form.Get("scope"))
	if err != nil {
		return req, &oauthError{http.StatusBadRequest, "invalid_scope", err.Error()}
	}
	req.scopes = scopes
	return req, nil
}

// parseScope reads a scope parameter (RFC 6749 section 3.3: scope tokens separated by single
// spaces); empty means DefaultScope. Every token must be one the server grants; repeats are
// dropped.
func parseScope(s string) ([]string, error) {
	if s == "" {
		return []string{DefaultScope}, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, sc := range strings.Split(s, " ") {
		switch {
		case sc == "":
			return nil, errors.New("scope tokens must be separated by single spaces")
		case !knownScopes[sc]:
			return nil, fmt.Errorf("scope %q is not granted here (read, write, admin)", sc)
		case !seen[sc]:
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return out, nil
}

// ErrClientCert marks a client-cert header value that is not one certificate.
var ErrClientCert = errors.New("malformed client-cert")

// ParseClientCert parses an RFC 9440 Client-Cert value: an RFC 8941 Byte Sequence, ':' base64
// ':', whose content is one DER certificate. It is strict: padded standard base64 only, no
// whitespace inside, no parameters, no trailing data after the certificate.
func ParseClientCert(v string) (*x509.Certificate, error) {
	v = strings.Trim(v, " ") // RFC 8941 section 4.2: leading and trailing SP are discarded
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, fmt.Errorf("%w: not a byte sequence (:base64:)", ErrClientCert)
	}
	b64 := v[1 : len(v)-1]
	for i := 0; i < len(b64); i++ {
		c := b64[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, fmt.Errorf("%w: byte %d is not base64", ErrClientCert, i+1)
		}
	}
	der, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClientCert, err)
	}
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrClientCert)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClientCert, err)
	}
	return cert, nil
}

func (a *as) claims(req tokenRequest) Claims {
	iat := a.cfg.Now().Unix()
	return Claims{
		Issuer:       a.cfg.Issuer,
		Subject:      req.clientID,
		Audience:     a.cfg.Audience,
		ClientID:     req.clientID,
		Scope:        strings.Join(req.scopes, " "),
		IssuedAt:     iat,
		Expiry:       iat + int64(a.cfg.TokenTTL/time.Second),
		ID:           rand.Text(),
		Confirmation: Confirmation{X5tS256: req.thumbprint.String()},
	}
}

func (a *as) sign(c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := a.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // unreachable: fixed types
	}
	return b
}

func serveJSON(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// writeJSON writes a token endpoint response: never cached (RFC 6749 section 5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
