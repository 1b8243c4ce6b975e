package extauthz

import (
	"encoding/json"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/certbind/certbind/policy"
)

// Upstream headers certbind owns: on allow it sets each one its decision carries and removes the
// rest, so a client-sent copy never reaches the upstream.
const (
	HeaderClientID   = "x-certbind-client-id"
	HeaderThumbprint = "x-certbind-cert-thumbprint"
	HeaderClientCert = "client-cert" // RFC 9440: the verified leaf
	// HeaderClientCertChain is never set: RFC 9440 section 3 sanitizes Client-Cert and
	// Client-Cert-Chain together, so a client-sent chain cannot sit beside certbind's leaf.
	HeaderClientCertChain = "client-cert-chain"
	HeaderSubject         = "x-certbind-subject"
	HeaderScope           = "x-certbind-scope"
	// HeaderDPoPKey is the RFC 7638 thumbprint of the key a DPoP proof was signed with (the
	// token's cnf.jkt), when the token is DPoP-bound.
	HeaderDPoPKey = "x-certbind-dpop-jkt"
)

// HeaderDPoPNonce carries a server nonce to the client (RFC 9449 section 8.1), on denials and,
// when nonces are on, on allowed responses.
const HeaderDPoPNonce = "dpop-nonce"

var upstreamHeaders = []string{HeaderClientID, HeaderThumbprint, HeaderClientCert, HeaderClientCertChain, HeaderSubject, HeaderScope, HeaderDPoPKey}

// grpcCode is the CheckResponse status code of a reason's class. Envoy only tells OK from
// the rest; the code is for logs and for clients of the gRPC API.
func grpcCode(c policy.Class) codes.Code {
	switch c {
	case policy.ClassOK:
		return codes.OK
	case policy.ClassBadRequest:
		return codes.InvalidArgument
	case policy.ClassUnauthenticated, policy.ClassTokenMissing:
		return codes.Unauthenticated
	case policy.ClassUnavailable:
		return codes.Unavailable
	}
	return codes.PermissionDenied // forbidden, unidentified, insufficient scope
}

// HTTPDenial is a rendered deny: what the client receives.
type HTTPDenial struct {
	Status  int
	Headers []Header // in the order sent
	Body    string
	// OAuthError and Description are what Body says ("" for a bare Bearer challenge).
	OAuthError, Description string
}

// Denial renders a deny for the HTTP client from the reason's class and the mode. client_auth
// speaks OAuth at the token endpoint (RFC 6749 section 5.2: invalid_client 401,
// invalid_request 400); bound_token speaks RFC 6750 and RFC 9449 with a WWW-Authenticate
// challenge in the scheme the request used (Bearer or DPoP), or in every scheme the resource
// accepts when it sent no token; identity and unrouted requests get 403.
func Denial(d policy.Decision, rs policy.Response) HTTPDenial {
	class := d.Reason.Class()
	failedAuth := class == policy.ClassUnauthenticated || class == policy.ClassUnidentified
	status, oauthErr := http.StatusForbidden, "access_denied"
	h := make([]Header, 1, 4)
	h[0] = Header{"cache-control", "no-store"}
	wwwAuthenticate := func(schemes policy.Schemes, errCode, desc string, scopes []string) {
		h = append(h, Header{"www-authenticate", challenges(schemes, rs, errCode, desc, scopes)})
	}
	if d.DPoPNonce != "" {
		h = append(h, Header{HeaderDPoPNonce, d.DPoPNonce})
	}
	switch {
	case class == policy.ClassBadRequest:
		status, oauthErr = http.StatusBadRequest, "invalid_request"
		if d.Mode == policy.ModeBoundToken {
			wwwAuthenticate(d.Challenge, "invalid_request", d.Reason.Description(), nil)
		}
	case class == policy.ClassForbidden:
	case d.Mode == policy.ModeBoundToken:
		switch class {
		case policy.ClassTokenMissing:
			// RFC 6750 section 3.1: no error code when the request has no token at all.
			wwwAuthenticate(d.Challenge, "", "", nil)
			return HTTPDenial{Status: http.StatusUnauthorized, Headers: h}
		case policy.ClassInsufficientScope:
			status, oauthErr = http.StatusForbidden, "insufficient_scope"
			wwwAuthenticate(d.Challenge, oauthErr, d.Reason.Description(), d.RequiredScopes)
		case policy.ClassUnavailable:
			status, oauthErr = http.StatusServiceUnavailable, "temporarily_unavailable"
		case policy.ClassProofInvalid:
			// RFC 9449 section 7.1: a DPoP challenge, whatever else the resource accepts.
			status, oauthErr = http.StatusUnauthorized, "invalid_dpop_proof"
			wwwAuthenticate(policy.SchemeDPoP, oauthErr, d.Reason.Description(), nil)
		case policy.ClassNonceRequired:
			// RFC 9449 section 9: use_dpop_nonce, with the nonce to use in DPoP-Nonce.
			status, oauthErr = http.StatusUnauthorized, "use_dpop_nonce"
			wwwAuthenticate(policy.SchemeDPoP, oauthErr, d.Reason.Description(), nil)
		default:
			status, oauthErr = http.StatusUnauthorized, "invalid_token"
			wwwAuthenticate(d.Challenge, oauthErr, d.Reason.Description(), nil)
		}
	case d.Mode == policy.ModeClientAuth && failedAuth:
		status, oauthErr = http.StatusUnauthorized, "invalid_client"
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{oauthErr, d.Reason.Description()})
	h = append(h, Header{"content-type", "application/json"})
	return HTTPDenial{Status: status, Headers: h, Body: string(body), OAuthError: oauthErr, Description: d.Reason.Description()}
}

// challenges renders a WWW-Authenticate value: one challenge per scheme (RFC 9110 section
// 11.6.1 allows a list), Bearer (RFC 6750 section 3) before DPoP (RFC 9449 section 7.1, with
// algs). No scheme is Bearer. Every value comes from configuration validated at load or from
// our own constants: none needs escaping.
func challenges(schemes policy.Schemes, rs policy.Response, errCode, desc string, scopes []string) string {
	if schemes == 0 {
		schemes = policy.SchemeBearer
	}
	var out []string
	if schemes&policy.SchemeBearer != 0 {
		out = append(out, challenge("Bearer", rs.Realm, errCode, desc, scopes, ""))
	}
	if schemes&policy.SchemeDPoP != 0 {
		out = append(out, challenge("DPoP", rs.Realm, errCode, desc, scopes, rs.DPoPAlgorithms))
	}
	return strings.Join(out, ", ")
}

// challenge renders one challenge of scheme with its auth-params.
func challenge(scheme, realm, errCode, desc string, scopes []string, algs string) string {
	var parts []string
	if realm != "" {
		parts = append(parts, `realm="`+realm+`"`)
	}
	if errCode != "" {
		parts = append(parts, `error="`+errCode+`"`)
	}
	if desc != "" {
		parts = append(parts, `error_description="`+desc+`"`)
	}
	if len(scopes) > 0 {
		parts = append(parts, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	if algs != "" {
		parts = append(parts, `algs="`+algs+`"`)
	}
	if len(parts) == 0 {
		return scheme
	}
	return scheme + " " + strings.Join(parts, ", ")
}

// ClientHeaders are the headers an allowed request's response carries to the client: a fresh
// DPoP nonce when nonces are on (RFC 9449 section 8.2).
func ClientHeaders(d policy.Decision) []Header {
	if d.DPoPNonce == "" {
		return nil
	}
	return []Header{{HeaderDPoPNonce, d.DPoPNonce}}
}

// Header is one header name and value.
type Header struct{ Name, Value string }

// Allowed returns the upstream headers to set on allow, and the headers to remove: certbind's
// own headers this decision does not set (so no client-sent copy survives), and Authorization
// and the DPoP proof when the token is not to be forwarded.
func Allowed(d policy.Decision, rs policy.Response) (set []Header, remove []string) {
	set = make([]Header, 0, len(upstreamHeaders))
	remove = make([]string, 0, len(upstreamHeaders)+1)
	for _, h := range upstreamHeaders {
		v := upstreamValue(d, h)
		if v == "" {
			remove = append(remove, h)
			continue
		}
		set = append(set, Header{h, v})
	}
	if d.Mode == policy.ModeBoundToken && !rs.ForwardAuthorization {
		// The DPoP proof goes with the token it was made for (its ath).
		remove = append(remove, "authorization", "dpop")
	}
	return set, remove
}

func upstreamValue(d policy.Decision, h string) string {
	p := d.Certificate
	switch h {
	case HeaderClientID:
		return d.ClientID
	case HeaderThumbprint:
		if p != nil {
			return p.X5tS256
		}
	case HeaderClientCert:
		if p != nil {
			return p.ClientCert
		}
	case HeaderSubject:
		if d.Mode == policy.ModeBoundToken {
			return d.Subject
		}
	case HeaderScope:
		if d.Mode == policy.ModeBoundToken {
			return strings.Join(d.Scopes, " ")
		}
	case HeaderDPoPKey:
		return d.DPoPKey
	}
	return ""
}

// Render turns a decision into Envoy's CheckResponse.
func Render(d policy.Decision, rs policy.Response) *authv3.CheckResponse {
	meta := metadata(d)
	if d.Allow {
		set, remove := Allowed(d, rs)
		ok := &authv3.OkHttpResponse{HeadersToRemove: remove, Headers: make([]*corev3.HeaderValueOption, len(set))}
		for i, h := range set {
			ok.Headers[i] = overwrite(h.Name, h.Value)
		}
		for _, h := range ClientHeaders(d) {
			ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, overwrite(h.Name, h.Value))
		}
		return &authv3.CheckResponse{
			Status:          &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: meta,
		}
	}
	den := Denial(d, rs)
	resp := &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(den.Status)},
		Body:   den.Body,
	}
	resp.Headers = make([]*corev3.HeaderValueOption, len(den.Headers))
	for i, h := range den.Headers {
		resp.Headers[i] = overwrite(h.Name, h.Value)
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(grpcCode(d.Reason.Class())), Message: string(d.Reason)},
		HttpResponse:    &authv3.CheckResponse_DeniedResponse{DeniedResponse: resp},
		DynamicMetadata: meta,
	}
}

// overwrite replaces any existing value: the proto default APPEND_IF_EXISTS_OR_ADD would let a
// client-sent copy survive next to ours (Envoy's ext_authz filter, onComplete).
func overwrite(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// metadata is what Envoy's access log can read under the ext_authz filter's namespace.
func metadata(d policy.Decision) *structpb.Struct {
	decision := "deny"
	if d.Allow {
		decision = "allow"
	}
	fields := map[string]*structpb.Value{
		"decision": structpb.NewStringValue(decision),
		"reason":   structpb.NewStringValue(string(d.Reason)),
	}
	if d.Mode != "" {
		fields["mode"] = structpb.NewStringValue(string(d.Mode))
	}
	if d.ClientID != "" {
		fields["client_id"] = structpb.NewStringValue(d.ClientID)
	}
	return &structpb.Struct{Fields: fields}
}
