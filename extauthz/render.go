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
)

var upstreamHeaders = []string{HeaderClientID, HeaderThumbprint, HeaderClientCert, HeaderClientCertChain, HeaderSubject, HeaderScope}

// kind groups reasons by how a deny is rendered.
type kind int

const (
	kindAllow        kind = iota
	kindUnauthorized      // the client or its certificate failed authentication
	kindBadRequest        // the request itself is malformed
	kindForbidden         // no policy applies: nobody may pass
	kindTokenMissing      // no access token: a bare Bearer challenge (RFC 6750 section 3.1)
	kindScope             // valid token without the required scope
	kindUnavailable       // certbind cannot verify the token now: fail closed with 503
)

type mapping struct {
	code codes.Code
	kind kind
}

// reasonTable maps every policy reason to its gRPC status code and rendering. A test fails if a
// reason is missing.
var reasonTable = map[policy.Reason]mapping{
	policy.ReasonOK:                     {codes.OK, kindAllow},
	policy.ReasonNoPolicy:               {codes.PermissionDenied, kindForbidden},
	policy.ReasonUnknownMode:            {codes.PermissionDenied, kindForbidden},
	policy.ReasonNoCertificate:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateMalformed:   {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonXFCCMalformed:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonXFCCElements:           {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonXFCCUntrusted:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateMismatch:    {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonChainTooLong:           {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateExpired:     {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateNotYetValid: {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateUntrusted:   {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateUsage:       {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateIsCA:        {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateInvalid:     {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateRevoked:     {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCRLExpired:             {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonRevocationUnknown:      {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonClientKeysUnavailable:  {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonRequestMalformed:       {codes.InvalidArgument, kindBadRequest},
	policy.ReasonClientIDMissing:        {codes.InvalidArgument, kindBadRequest},
	policy.ReasonClientIDConflict:       {codes.InvalidArgument, kindBadRequest},
	policy.ReasonClientAuthMultiple:     {codes.InvalidArgument, kindBadRequest},
	policy.ReasonClientNotAllowed:       {codes.PermissionDenied, kindForbidden},
	policy.ReasonUnknownClient:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateUnbound:     {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonNoMatchingClient:       {codes.PermissionDenied, kindUnauthorized},
	policy.ReasonAmbiguousClient:        {codes.PermissionDenied, kindUnauthorized},
	policy.ReasonTokenMissing:           {codes.Unauthenticated, kindTokenMissing},
	policy.ReasonTokenRequestInvalid:    {codes.InvalidArgument, kindBadRequest},
	policy.ReasonTokenMalformed:         {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenAlgorithm:         {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenType:              {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenIssuer:            {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenUnknownKey:        {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenSignature:         {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenExpired:           {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenNotYetValid:       {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenAudience:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenInactive:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenUnverifiable:      {codes.Unavailable, kindUnavailable},
	policy.ReasonTokenUnbound:           {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenCNFMalformed:      {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenCNFUnsupported:    {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenCertMissing:       {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenBindingMismatch:   {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonTokenClientMismatch:    {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonInsufficientScope:      {codes.PermissionDenied, kindScope},
}

// HTTPDenial is a rendered deny: what the client receives.
type HTTPDenial struct {
	Status  int
	Headers []Header // in the order sent
	Body    string
	// OAuthError and Description are what Body says ("" for a bare Bearer challenge).
	OAuthError, Description string
}

func lookup(r policy.Reason) mapping {
	if m, ok := reasonTable[r]; ok {
		return m
	}
	return mapping{codes.PermissionDenied, kindForbidden} // unreachable: TestEveryReasonIsMapped
}

// Denial renders a deny for the HTTP client, by mode. client_auth speaks OAuth at the token
// endpoint (RFC 6749 section 5.2: invalid_client 401, invalid_request 400); bound_token speaks
// RFC 6750 with a WWW-Authenticate challenge; identity and unrouted requests get 403.
func Denial(d policy.Decision, rs policy.Response) HTTPDenial {
	m := lookup(d.Reason)
	status, oauthErr := http.StatusForbidden, "access_denied"
	h := make([]Header, 1, 3)
	h[0] = Header{"cache-control", "no-store"}
	wwwAuthenticate := func(v string) { h = append(h, Header{"www-authenticate", v}) }
	switch {
	case m.kind == kindBadRequest:
		status, oauthErr = http.StatusBadRequest, "invalid_request"
		if d.Mode == policy.ModeBoundToken {
			wwwAuthenticate(challenge(rs.Realm, "invalid_request", d.Reason.Description(), nil))
		}
	case m.kind == kindForbidden:
	case d.Mode == policy.ModeBoundToken:
		switch m.kind {
		case kindTokenMissing:
			// RFC 6750 section 3.1: no error code when the request has no token at all.
			wwwAuthenticate(challenge(rs.Realm, "", "", nil))
			return HTTPDenial{Status: http.StatusUnauthorized, Headers: h}
		case kindScope:
			status, oauthErr = http.StatusForbidden, "insufficient_scope"
			wwwAuthenticate(challenge(rs.Realm, oauthErr, d.Reason.Description(), d.RequiredScopes))
		case kindUnavailable:
			status, oauthErr = http.StatusServiceUnavailable, "temporarily_unavailable"
		default:
			status, oauthErr = http.StatusUnauthorized, "invalid_token"
			wwwAuthenticate(challenge(rs.Realm, oauthErr, d.Reason.Description(), nil))
		}
	case d.Mode == policy.ModeClientAuth && m.kind == kindUnauthorized:
		status, oauthErr = http.StatusUnauthorized, "invalid_client"
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{oauthErr, d.Reason.Description()})
	h = append(h, Header{"content-type", "application/json"})
	return HTTPDenial{Status: status, Headers: h, Body: string(body), OAuthError: oauthErr, Description: d.Reason.Description()}
}

// challenge renders an RFC 6750 section 3 WWW-Authenticate value. Every value comes from
// configuration validated at load or from our own constants: none needs escaping.
func challenge(realm, errCode, desc string, scopes []string) string {
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
	if len(parts) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// Header is one header name and value.
type Header struct{ Name, Value string }

// Allowed returns the upstream headers to set on allow, and the headers to remove: certbind's
// own headers this decision does not set (so no client-sent copy survives), and Authorization
// when it is not to be forwarded.
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
		remove = append(remove, "authorization")
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
			return ":" + p.DERBase64 + ":"
		}
	case HeaderSubject:
		if d.Mode == policy.ModeBoundToken {
			return d.Subject
		}
	case HeaderScope:
		if d.Mode == policy.ModeBoundToken {
			return strings.Join(d.Scopes, " ")
		}
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
		return &authv3.CheckResponse{
			Status:          &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: meta,
		}
	}
	m := lookup(d.Reason)
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
		Status:          &rpcstatus.Status{Code: int32(m.code), Message: string(d.Reason)},
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
