package extauthz

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/propagation"

	"github.com/certbind/certbind/extauthz/xfcc"
	"github.com/certbind/certbind/policy"
)

// HTTPHandler is certbind's HTTP authorization endpoint, for Envoy's ext_authz http_service and
// nginx auth_request: the proxy forwards the request (or, for nginx, a subrequest carrying the
// original URI and method in headers) with the client certificate in a header it sets itself.
// 200 allows, with certbind's upstream headers on the response (for Envoy's
// allowed_upstream_headers or nginx auth_request_set); any other status denies, with the same
// status, headers and body the gRPC path sends.
//
// The certificate header is only as trustworthy as the proxy that sets it: the proxy must
// overwrite any client-sent copy (nginx proxy_set_header in the auth location does).
type HTTPHandler struct {
	s *Server
}

// NewHTTPHandler shares a Server's engine, logger and clock.
func NewHTTPHandler(s *Server) *HTTPHandler { return &HTTPHandler{s: s} }

func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.s.now()
	cfg := h.s.engine.Config()
	if cfg == nil {
		http.Error(w, "certbind: no configuration loaded", http.StatusServiceUnavailable)
		return
	}
	ac := h.s.configs.forConfig(cfg)
	in, certCached := readHTTPInput(r, ac, &h.s.configs)
	ctx, c := h.s.startCheck(r.Context(), "http", propagation.HeaderCarrier(r.Header), false)
	d := h.s.engine.DecideWith(ctx, cfg, in)
	h.s.record(c.spanOf(), d, in.Request.Headers["x-request-id"], start)
	endCheck(c, d, certCached)
	rs := ac.set.response
	if d.Allow {
		set, remove := Allowed(d, rs)
		for _, h := range set {
			setHeader(w.Header(), h.Name, h.Value)
		}
		// Envoy's http_service removes the upstream headers named here (its counterpart of
		// headers_to_remove); nginx sets each header from the response, so an absent one is
		// sent empty, which nginx drops.
		if len(remove) > 0 {
			setHeader(w.Header(), "x-envoy-auth-headers-to-remove", strings.Join(remove, ","))
		}
		// For the client's response (Envoy's allowed_client_headers_on_success, nginx
		// add_header from auth_request_set).
		for _, h := range ClientHeaders(d) {
			setHeader(w.Header(), h.Name, h.Value)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	den := Denial(d, rs)
	for _, h := range den.Headers {
		w.Header().Set(h.Name, h.Value)
	}
	// For proxies that keep the auth response's headers but not its body (nginx auth_request):
	// the reason, the OAuth error and its description, to rebuild the body from.
	w.Header().Set("x-certbind-reason", string(d.Reason))
	if den.OAuthError != "" {
		w.Header().Set("x-certbind-error", den.OAuthError)
		w.Header().Set("x-certbind-error-description", den.Description)
	}
	status := den.Status
	if ac.set.http.AuthRequestStatuses && status != http.StatusUnauthorized && status != http.StatusForbidden {
		w.Header().Set("x-certbind-status", strconv.Itoa(status))
		status = http.StatusForbidden
	}
	w.WriteHeader(status)
	io.WriteString(w, den.Body)
}

// readHTTPInput turns an authorization request into the policy's input, and says whether its
// certificate came from the cache.
func readHTTPInput(r *http.Request, ac *adapterConfig, configs *adapterConfigs) (policy.Input, bool) {
	set := ac.set.http
	hdr := make(map[string]string, len(r.Header))
	for k, vs := range r.Header {
		hdr[lowerName(k)] = strings.Join(vs, ",")
	}
	in := policy.Input{
		Request: policy.Request{
			Method:  r.Method,
			Scheme:  "https",
			Host:    r.Host,
			Path:    r.URL.RequestURI(),
			Headers: hdr,
		},
	}
	if set.OriginalSchemeHeader != "" {
		in.Request.Scheme = hdr[set.OriginalSchemeHeader]
	}
	if set.OriginalAuthorityHeader != "" {
		in.Request.Authority = hdr[set.OriginalAuthorityHeader]
	}
	if set.ModeHeader != "" {
		in.ModeHint = hdr[set.ModeHeader]
	}
	if set.OriginalURIHeader != "" {
		in.Request.Path = hdr[set.OriginalURIHeader]
	}
	if set.OriginalMethodHeader != "" {
		in.Request.Method = hdr[set.OriginalMethodHeader]
	}
	if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(set.MaxBodyBytes)+1))
		switch {
		case err != nil:
			in.Request.BodyTruncated = true
		case len(body) > set.MaxBodyBytes:
			in.Request.Body, in.Request.BodyTruncated = body[:set.MaxBodyBytes], true
		default:
			in.Request.Body = body
		}
	}
	// Envoy's http_service with with_request_body marks a body it cut, as on the gRPC path.
	if hdr["x-envoy-auth-partial-body"] == "true" {
		in.Request.BodyTruncated = true
	}
	cert, certOK := hdr[set.CertificateHeader]
	chain, chainOK := hdr[set.ChainHeader]
	cached := configs.fill(&in, ac, func() (*policy.Presented, error) { return httpCertificate(hdr, ac.set) },
		"http", string(set.CertificateFormat), presence(certOK), cert, presence(chainOK), chain)
	return in, cached
}

// httpCertificate reads the certificate from the header the proxy set. An XFCC header goes
// through the same reconciliation as the gRPC path's (certificate_sources, trusted_proxies, the
// "last" element rule, Hash and Chain checks), with no peer certificate beside it. The other
// formats carry the proxy's peer certificate, so certificate_sources.peer governs them.
func httpCertificate(hdr map[string]string, s *settings) (*policy.Presented, error) {
	set := s.http
	v, ok := hdr[set.CertificateHeader]
	if set.CertificateFormat == policy.CertFormatXFCC {
		return certificate(certSources{xfcc: v, xfccPresent: ok}, s)
	}
	src := s.sources
	if src.XFCC == policy.SourceRequire {
		return nil, policy.Deny(policy.ReasonNoCertificate, fmt.Errorf("certificate_sources.xfcc is require, but http_authz.certificate_format is %s", set.CertificateFormat))
	}
	if src.Peer == policy.SourceIgnore || !ok || v == "" {
		if src.Peer == policy.SourceRequire {
			return nil, policy.Deny(policy.ReasonNoCertificate, fmt.Errorf("certificate_sources.peer is require and the request has no %s", set.CertificateHeader))
		}
		return nil, nil
	}
	var leaf []byte
	var inter [][]byte
	switch set.CertificateFormat {
	case policy.CertFormatRFC9440:
		der, err := byteSequence(v)
		if err != nil {
			return nil, policy.Deny(policy.ReasonCertificateMalformed, fmt.Errorf("%s: %w", set.CertificateHeader, err))
		}
		leaf = der
		if chain, ok := hdr[set.ChainHeader]; ok {
			for i, item := range strings.Split(chain, ",") {
				der, err := byteSequence(strings.TrimSpace(item))
				if err != nil {
					return nil, policy.Deny(policy.ReasonCertificateMalformed, fmt.Errorf("%s[%d]: %w", set.ChainHeader, i, err))
				}
				inter = append(inter, der)
			}
			if len(inter)+1 > s.limits.MaxChainCerts {
				return nil, policy.Deny(policy.ReasonChainTooLong, fmt.Errorf("%d certificates in the chain", len(inter)+1))
			}
		}
	case policy.CertFormatPEMURLEncoded:
		der, err := xfcc.DecodeCert(v)
		if err != nil {
			return nil, policy.Deny(policy.ReasonCertificateMalformed, fmt.Errorf("%s: %w", set.CertificateHeader, err))
		}
		leaf = der
	default:
		return nil, policy.Deny(policy.ReasonCertificateMalformed, fmt.Errorf("http_authz.certificate_format %q", set.CertificateFormat))
	}
	p, err := s.parse(leaf, inter)
	if err != nil {
		return nil, policy.Deny(policy.ReasonCertificateMalformed, err)
	}
	return p, nil
}

// byteSequence parses an RFC 8941 byte sequence, `:base64:` (RFC 9440 section 2.1).
func byteSequence(s string) ([]byte, error) {
	if len(s) < 2 || s[0] != ':' || s[len(s)-1] != ':' {
		return nil, errors.New("not an RFC 8941 byte sequence (:base64:)")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s[1 : len(s)-1])
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("bad base64: %v", err)
	}
	return b, nil
}

// commonHeaders are the request headers an authorization request usually carries and the
// response headers certbind writes: their lower-case and canonical forms are made once, not on
// every request (net/http canonicalizes request header names; certbind's policy input and
// settings use lower case).
var commonHeaders = []string{
	"accept", "authorization", "client-cert", "client-cert-chain", "content-length", "content-type",
	"dpop", "dpop-nonce", "traceparent", "tracestate", "user-agent", "x-envoy-auth-headers-to-remove",
	"x-envoy-auth-partial-body", "x-envoy-expected-rq-timeout-ms", "x-envoy-internal", "x-envoy-original-path",
	"x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
	"x-original-authority", "x-original-method", "x-original-scheme", "x-original-uri", "x-real-ip",
	"x-request-id", "www-authenticate",
}

var lowerNames, canonicalNames = func() (map[string]string, map[string]string) {
	names := append(slices.Clone(commonHeaders), upstreamHeaders...)
	lower, canonical := make(map[string]string, len(names)), make(map[string]string, len(names))
	for _, n := range names {
		c := textproto.CanonicalMIMEHeaderKey(n)
		lower[c], canonical[n] = n, c
	}
	return lower, canonical
}()

// lowerName is strings.ToLower(name), without an allocation for a common header.
func lowerName(name string) string {
	if l, ok := lowerNames[name]; ok {
		return l
	}
	return strings.ToLower(name)
}

// setHeader is h.Set(name, value), without canonicalizing a name certbind writes on every
// answer again.
func setHeader(h http.Header, name, value string) {
	k, ok := canonicalNames[name]
	if !ok {
		k = textproto.CanonicalMIMEHeaderKey(name)
	}
	h[k] = []string{value}
}
