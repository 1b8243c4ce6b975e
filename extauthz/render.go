package extauthz

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/certbind/certbind/policy"
)

// Upstream headers certbind sets on allow. Client-sent copies never reach the upstream: each is
// either overwritten or removed.
const (
	HeaderClientID   = "x-certbind-client-id"
	HeaderThumbprint = "x-certbind-cert-thumbprint"
	HeaderClientCert = "client-cert" // RFC 9440
)

var upstreamHeaders = []string{HeaderClientID, HeaderThumbprint, HeaderClientCert}

// kind groups reasons by how a deny is rendered.
type kind int

const (
	kindAllow        kind = iota
	kindUnauthorized      // the client or its certificate failed authentication
	kindBadRequest        // the request itself is malformed
	kindForbidden         // no policy applies: nobody may pass
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
	policy.ReasonRequestMalformed:       {codes.InvalidArgument, kindBadRequest},
	policy.ReasonClientIDMissing:        {codes.InvalidArgument, kindBadRequest},
	policy.ReasonClientIDConflict:       {codes.InvalidArgument, kindBadRequest},
	policy.ReasonUnknownClient:          {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonCertificateUnbound:     {codes.Unauthenticated, kindUnauthorized},
	policy.ReasonNoMatchingClient:       {codes.PermissionDenied, kindUnauthorized},
	policy.ReasonAmbiguousClient:        {codes.PermissionDenied, kindUnauthorized},
}

// HTTPDenial is a rendered deny: what the client receives.
type HTTPDenial struct {
	Status  int
	Headers map[string]string
	Body    string
}

// Denial renders a deny for the HTTP client, by mode: client_auth speaks OAuth (RFC 6749
// section 5.2: invalid_client is 401, invalid_request 400); identity and unrouted requests are
// 403 (or 400 when the request is malformed).
func Denial(d policy.Decision) HTTPDenial {
	m, ok := reasonTable[d.Reason]
	if !ok {
		m = mapping{codes.PermissionDenied, kindForbidden}
	}
	status, oauthErr := http.StatusForbidden, "access_denied"
	switch {
	case m.kind == kindBadRequest:
		status, oauthErr = http.StatusBadRequest, "invalid_request"
	case d.Mode == policy.ModeClientAuth && m.kind == kindUnauthorized:
		status, oauthErr = http.StatusUnauthorized, "invalid_client"
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{oauthErr, d.Reason.Description()})
	return HTTPDenial{
		Status: status,
		Headers: map[string]string{
			"content-type":  "application/json",
			"cache-control": "no-store",
		},
		Body: string(body),
	}
}

// Allowed returns the upstream headers to set on allow, and the certbind headers to remove
// because this decision does not set them.
func Allowed(d policy.Decision) (set map[string]string, remove []string) {
	set = map[string]string{}
	if d.ClientID != "" {
		set[HeaderClientID] = d.ClientID
	}
	if p := d.Certificate; p != nil {
		set[HeaderThumbprint] = p.Thumbprint.String()
		set[HeaderClientCert] = ":" + base64.StdEncoding.EncodeToString(p.Leaf.Raw) + ":"
	}
	for _, h := range upstreamHeaders {
		if _, ok := set[h]; !ok {
			remove = append(remove, h)
		}
	}
	return set, remove
}

// Render turns a decision into Envoy's CheckResponse.
func Render(d policy.Decision) *authv3.CheckResponse {
	meta := metadata(d)
	if d.Allow {
		set, remove := Allowed(d)
		ok := &authv3.OkHttpResponse{HeadersToRemove: remove}
		for _, h := range upstreamHeaders {
			if v, found := set[h]; found {
				ok.Headers = append(ok.Headers, overwrite(h, v))
			}
		}
		return &authv3.CheckResponse{
			Status:          &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: meta,
		}
	}
	m, ok := reasonTable[d.Reason]
	if !ok {
		m = mapping{codes.PermissionDenied, kindForbidden}
	}
	den := Denial(d)
	resp := &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(den.Status)},
		Body:   den.Body,
	}
	for _, h := range []string{"content-type", "cache-control"} {
		resp.Headers = append(resp.Headers, overwrite(h, den.Headers[h]))
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(m.code), Message: string(d.Reason)},
		HttpResponse:    &authv3.CheckResponse_DeniedResponse{DeniedResponse: resp},
		DynamicMetadata: meta,
	}
}

// overwrite replaces any existing value: the proto default APPEND_IF_EXISTS_OR_ADD would let a
// client-sent copy survive next to ours (REFERENCE section 4).
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
