package envoygateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
	"github.com/certbind/certbind/testenv/pki"
)

// xfcc is the ClientTrafficPolicy's XFCC handling in Envoy's terms.
type xfcc struct {
	mode    egv1a1.XFCCForwardMode
	forward envoyxfcc.ForwardMode
	details envoyxfcc.Details
}

// xfccSettings translates headers.xForwardedClientCert as Envoy Gateway does
// (forward_client_cert_details and set_current_client_cert_details; Hash always, By when
// Envoy's certificate has a URI SAN).
func xfccSettings(t *testing.T, ctp *egv1a1.ClientTrafficPolicy) xfcc {
	t.Helper()
	x := xfcc{mode: egv1a1.XFCCForwardModeSanitize}
	if ctp.Spec.Headers != nil && ctp.Spec.Headers.XForwardedClientCert != nil {
		xc := ctp.Spec.Headers.XForwardedClientCert
		x.mode = ptr.Deref(xc.Mode, egv1a1.XFCCForwardModeSanitize)
		for _, d := range xc.CertDetailsToAdd {
			switch d {
			case egv1a1.XFCCCertDataCert:
				x.details.Cert = true
			case egv1a1.XFCCCertDataChain:
				x.details.Chain = true
			case egv1a1.XFCCCertDataSubject:
				x.details.Subject = true
			case egv1a1.XFCCCertDataURI:
				x.details.URI = true
			case egv1a1.XFCCCertDataDNS:
				x.details.DNS = true
			default:
				t.Fatalf("certDetailsToAdd %q: unknown", d)
			}
		}
	}
	x.forward = map[egv1a1.XFCCForwardMode]envoyxfcc.ForwardMode{
		egv1a1.XFCCForwardModeSanitize:          envoyxfcc.Sanitize,
		egv1a1.XFCCForwardModeForwardOnly:       envoyxfcc.ForwardOnly,
		egv1a1.XFCCForwardModeAppendForward:     envoyxfcc.AppendForward,
		egv1a1.XFCCForwardModeSanitizeSet:       envoyxfcc.SanitizeSet,
		egv1a1.XFCCForwardModeAlwaysForwardOnly: envoyxfcc.AlwaysForwardOnly,
	}[x.mode]
	if x.forward == "" {
		t.Fatalf("XFCC mode %q: unknown", x.mode)
	}
	return x
}

// gatewaySim builds the CheckRequests Envoy Gateway's Envoy sends certbind for this overlay:
// the route's SecurityPolicy decides whether there is a check, its context extensions and
// body; the ClientTrafficPolicy decides XFCC; there is never a peer certificate
// (envoyproxy/gateway#7360).
type gatewaySim struct {
	all  []manifest
	xfcc xfcc
}

type call struct {
	client     *pki.Cert // the certificate the client presents, with its chain
	clientXFCC string    // an x-forwarded-client-cert the client sends itself
	method     string
	path       string
	headers    map[string]string
	body       string
	peerOnly   bool // plain Envoy with include_peer_certificate and no XFCC, for contrast
}

// checkRequest returns the CheckRequest for c, nil when Envoy does not ask certbind (a public
// route), and the HTTP status Envoy answers without asking (413) or 0.
func (g *gatewaySim) checkRequest(t *testing.T, c call) (*authv3.CheckRequest, int) {
	t.Helper()
	route := routeFor(t, g.all, c.path)
	var hr *gwapiv1.HTTPRoute
	for _, r := range objects[*gwapiv1.HTTPRoute](g.all) {
		if r.Name == route {
			hr = r
		}
	}
	if hr == nil {
		t.Fatalf("%s: no HTTPRoute takes it", c.path)
	}
	sp := effectivePolicy(t, g.all, hr)
	if sp == nil || sp.Spec.ExtAuth == nil {
		return nil, 0
	}
	ea := sp.Spec.ExtAuth

	headers := map[string]string{
		":authority": "api.example.org", ":method": c.method, ":path": c.path, ":scheme": "https",
		"x-request-id": "5c1c5a1e-0000-4000-8000-000000000001",
	}
	for k, v := range c.headers {
		headers[strings.ToLower(k)] = v
	}
	var chain []*x509.Certificate
	if c.client != nil {
		for _, x := range c.client.Chain() {
			chain = append(chain, x.Cert)
		}
	}
	if !c.peerOnly {
		element := envoyxfcc.Build(nil, chain, g.xfcc.details)
		if v, ok := envoyxfcc.Mutate(c.clientXFCC, c.clientXFCC != "", c.client != nil, g.xfcc.forward, element); ok {
			headers["x-forwarded-client-cert"] = v
		} else {
			delete(headers, "x-forwarded-client-cert")
		}
	}
	httpReq := &authv3.AttributeContext_HttpRequest{
		Method: c.method, Path: c.path, Host: "api.example.org", Scheme: "https", Protocol: "HTTP/2",
	}
	if c.body != "" {
		headers["content-length"] = strconv.Itoa(len(c.body))
		if ea.BodyToExtAuth != nil {
			if uint32(len(c.body)) > ea.BodyToExtAuth.MaxRequestBytes {
				return nil, http.StatusRequestEntityTooLarge // with_request_body without allow_partial_message
			}
			httpReq.Body = c.body
		}
	}
	// headersToExtAuth is Envoy's allowed_headers.
	if len(ea.HeadersToExtAuth) > 0 {
		for k := range headers {
			if !strings.HasPrefix(k, ":") && !slices.ContainsFunc(ea.HeadersToExtAuth, func(h string) bool { return strings.EqualFold(h, k) }) {
				delete(headers, k)
			}
		}
	}
	httpReq.Headers = headers
	source := &authv3.AttributeContext_Peer{}
	if c.peerOnly && c.client != nil {
		source.Certificate = envoyxfcc.EncodePEM(c.client.PEM()) // Envoy's URL-encoded PEM, as in XFCC Cert
	}
	ext := map[string]string{}
	for _, ce := range ea.ContextExtensions {
		ext[ce.Name] = ptr.Deref(ce.Value, "")
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            source,
		Request:           &authv3.AttributeContext_Request{Http: httpReq},
		ContextExtensions: ext,
	}}, 0
}

// issuer is the authorization server of certbind.yaml's tokens.issuers, served from memory.
type issuer struct {
	key  *ecdsa.PrivateKey
	jwks []byte
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "as-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{key: key, jwks: jwks}
}

// RoundTrip answers the jwks_uri of certbind.yaml; nothing else is reachable.
func (is *issuer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.String() != "https://as.example.org/.well-known/jwks.json" {
		return &http.Response{StatusCode: http.StatusNotFound, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(is.jwks)), Request: r}, nil
}

// token signs an RFC 9068 access token for billing, bound to cert (RFC 8705 section 3.1).
func (is *issuer) token(t *testing.T, cert *pki.Cert) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: is.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "as-1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": "https://as.example.org", "aud": "https://api.example.org", "sub": "billing", "client_id": "billing",
		"scope": "read", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "eg-test-1",
		"cnf": map[string]string{"x5t#S256": policy.ThumbprintOf(cert.DER()).String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestCheckRequests runs certbind's ext_authz server, with the overlay's certbind.yaml, on the
// CheckRequests Envoy Gateway sends for the overlay's routes and policies.
func TestCheckRequests(t *testing.T) {
	all := loadAll(t)
	is := newIssuer(t)
	cfg, p := parseCertbindConfig(t, render(t), &policy.LoadOptions{HTTPClient: &http.Client{Transport: is, Timeout: 5 * time.Second}})
	srv := extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: cfg})})
	sim := &gatewaySim{all: all, xfcc: xfccSettings(t, only[*egv1a1.ClientTrafficPolicy](t, all))}

	var tokenLimit int
	for _, sp := range objects[*egv1a1.SecurityPolicy](all) {
		if ea := sp.Spec.ExtAuth; ea != nil && ea.BodyToExtAuth != nil {
			tokenLimit = int(ea.BodyToExtAuth.MaxRequestBytes)
		}
	}
	form := func(clientID string) string {
		return "grant_type=client_credentials&client_id=" + clientID + "&scope=read"
	}
	// A form body of exactly the size Envoy Gateway still sends: certbind's client_auth.max_form_bytes
	// must not refuse it.
	full := form("billing") + "&pad="
	full += strings.Repeat("x", max(tokenLimit-len(full), 0))
	formHeaders := map[string]string{"content-type": "application/x-www-form-urlencoded"}
	billingToken := is.token(t, p.billing)
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }
	forged := envoyxfcc.Build(nil, []*x509.Certificate{p.reports.Cert}, envoyxfcc.Details{Cert: true, Chain: true})

	cases := []struct {
		name       string
		c          call
		wantStatus int // Envoy's own answer without a check (413), 0 when certbind decides
		unchecked  bool
		allow      bool
		reason     policy.Reason
		mode       policy.Mode
		clientID   string
	}{
		{name: "token: billing with its own certificate", c: call{client: p.billing, method: "POST", path: "/oauth2/token", headers: formHeaders, body: form("billing")},
			allow: true, reason: policy.ReasonOK, mode: policy.ModeClientAuth, clientID: "billing"},
		{name: "token: body of exactly bodyToExtAuth.maxRequestBytes", c: call{client: p.billing, method: "POST", path: "/oauth2/token", headers: formHeaders, body: full},
			allow: true, reason: policy.ReasonOK, mode: policy.ModeClientAuth, clientID: "billing"},
		{name: "token: body over bodyToExtAuth.maxRequestBytes", c: call{client: p.billing, method: "POST", path: "/oauth2/token", headers: formHeaders, body: full + "x"},
			wantStatus: http.StatusRequestEntityTooLarge},
		{name: "token: reports' certificate claims billing", c: call{client: p.reports, method: "POST", path: "/oauth2/token", headers: formHeaders, body: form("billing")},
			reason: policy.ReasonCertificateUnbound, mode: policy.ModeClientAuth, clientID: "billing"},
		{name: "token: forged XFCC naming reports is replaced", c: call{client: p.billing, clientXFCC: forged, method: "POST", path: "/oauth2/token", headers: formHeaders, body: form("reports")},
			reason: policy.ReasonCertificateUnbound, mode: policy.ModeClientAuth, clientID: "reports"},
		{name: "token: peer certificate without XFCC (plain Envoy) is not enough", c: call{client: p.billing, peerOnly: true, method: "POST", path: "/oauth2/token", headers: formHeaders, body: form("billing")},
			reason: policy.ReasonNoCertificate, mode: policy.ModeClientAuth},
		{name: "api: billing's token with billing's certificate", c: call{client: p.billing, method: "GET", path: "/api/orders", headers: bearer(billingToken)},
			allow: true, reason: policy.ReasonOK, mode: policy.ModeBoundToken, clientID: "billing"},
		{name: "api: billing's token replayed with reports' certificate", c: call{client: p.reports, method: "GET", path: "/api/orders", headers: bearer(billingToken)},
			reason: policy.ReasonTokenBindingMismatch, mode: policy.ModeBoundToken, clientID: "billing"},
		{name: "api: no token", c: call{client: p.billing, method: "GET", path: "/api/orders"},
			reason: policy.ReasonTokenMissing, mode: policy.ModeBoundToken},
		{name: "catch-all: billing's certificate is an identity", c: call{client: p.billing, method: "GET", path: "/internal/jobs"},
			allow: true, reason: policy.ReasonOK, mode: policy.ModeIdentity, clientID: "billing"},
		{name: "catch-all: a certificate of the CA that no client registered", c: call{client: p.stranger, method: "GET", path: "/internal/jobs"},
			reason: policy.ReasonNoMatchingClient, mode: policy.ModeIdentity},
		{name: "well-known: public, certbind is not asked", c: call{client: p.stranger, method: "GET", path: "/.well-known/openid-configuration"},
			unchecked: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, status := sim.checkRequest(t, tc.c)
			if status != tc.wantStatus {
				t.Fatalf("Envoy answers %d itself, want %d", status, tc.wantStatus)
			}
			if status != 0 {
				return
			}
			if req == nil {
				if !tc.unchecked {
					t.Fatal("Envoy Gateway would not ask certbind")
				}
				return
			}
			if tc.unchecked {
				t.Fatal("Envoy Gateway asks certbind on a public route")
			}
			resp, err := srv.Check(context.Background(), req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			meta := resp.GetDynamicMetadata().GetFields()
			got := policy.Reason(meta["reason"].GetStringValue())
			allowed := resp.GetStatus().GetCode() == int32(codes.OK)
			if allowed != tc.allow || got != tc.reason {
				t.Fatalf("allow %v reason %s, want allow %v reason %s", allowed, got, tc.allow, tc.reason)
			}
			if m := policy.Mode(meta["mode"].GetStringValue()); m != tc.mode {
				t.Errorf("mode %s, want %s", m, tc.mode)
			}
			if id := meta["client_id"].GetStringValue(); id != tc.clientID {
				t.Errorf("client_id %q, want %q", id, tc.clientID)
			}
			if tc.allow {
				// The upstream learns the verified certificate (RFC 9440) and the client.
				var names []string
				for _, h := range resp.GetOkResponse().GetHeaders() {
					names = append(names, h.GetHeader().GetKey())
				}
				if !slices.Contains(names, "x-certbind-client-id") || !slices.Contains(names, "client-cert") {
					t.Errorf("upstream headers %v", names)
				}
			}
		})
	}

	// The same client chain with the details Envoy Gateway would write without Chain: billing's
	// certificate chains through an intermediate that only the client sent, so certbind cannot
	// verify it. This is why certDetailsToAdd has Chain (or certbind.yaml its intermediates).
	t.Run("without Chain the intermediate is missing", func(t *testing.T) {
		noChain := *sim
		noChain.xfcc.details.Chain = false
		req, _ := noChain.checkRequest(t, call{client: p.billing, method: "GET", path: "/internal/jobs"})
		resp, err := srv.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := policy.Reason(resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()); got != policy.ReasonCertificateUntrusted {
			t.Fatalf("reason %s, want %s", got, policy.ReasonCertificateUntrusted)
		}
	})
}
