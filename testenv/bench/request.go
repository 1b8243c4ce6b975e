package bench

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Mode is certbind's mode for a route (the context extension certbind_mode).
type Mode string

// The modes the scenarios use.
const (
	ModeBoundToken Mode = "bound_token"
	ModeClientAuth Mode = "client_auth"
	ModeIdentity   Mode = "identity"
)

// Request is one authorization request as the proxy would send it, transport aside.
type Request struct {
	Method string
	Path   string
	Mode   Mode
	// Headers of the client request as the proxy forwards them (lower-case names), the
	// proxy-set x-forwarded-client-cert included.
	Headers map[string]string
	Body    []byte
	// PeerCertificate and Principal are the CheckRequest's source certificate and principal.
	PeerCertificate string
	Principal       string
}

// Host is the :authority of every request.
const Host = "api.bench.test"

// NewRequest is what a client holding c sends in mode: for bound_token a GET of an API with its
// Bearer token; for identity the same GET without a token; for client_auth a token request (RFC 6749 section 4.4) with its client_id in the
// form body (RFC 8705 section 2). n makes the x-request-id.
func NewRequest(c *Credential, mode Mode, n uint64) Request {
	r := Request{
		Mode:            mode,
		PeerCertificate: c.PeerCertificate,
		Principal:       c.Principal,
		Headers: map[string]string{
			"user-agent":              "certbind-bench/1",
			"accept":                  "*/*",
			"x-forwarded-proto":       "https",
			"x-request-id":            fmt.Sprintf("00000000-0000-4000-8000-%012x", n),
			"x-forwarded-client-cert": c.XFCC,
		},
	}
	switch mode {
	case ModeClientAuth:
		r.Method, r.Path = http.MethodPost, "/oauth2/token"
		r.Body = []byte("grant_type=client_credentials&client_id=" + ClientID + "&scope=api")
		r.Headers["content-type"] = "application/x-www-form-urlencoded"
		r.Headers["content-length"] = strconv.Itoa(len(r.Body))
	case ModeIdentity:
		r.Method, r.Path = http.MethodGet, "/internal/orders/42"
	default:
		r.Method, r.Path = http.MethodGet, "/api/orders/42"
		r.Headers["authorization"] = "Bearer " + c.Token
	}
	return r
}

// CheckRequest is r as Envoy's ext_authz filter builds it (CheckRequestUtils::createHttpCheck)
// with include_peer_certificate and, for a body, with_request_body.
func (r Request) CheckRequest(at time.Time) *authv3.CheckRequest {
	hr := &authv3.AttributeContext_HttpRequest{
		Id:       r.Headers["x-request-id"],
		Method:   r.Method,
		Path:     r.Path,
		Host:     Host,
		Scheme:   "https",
		Protocol: "HTTP/2",
		Size:     int64(len(r.Body)),
		Headers: map[string]string{
			":authority": Host,
			":path":      r.Path,
			":method":    r.Method,
			":scheme":    "https",
		},
	}
	for k, v := range r.Headers {
		hr.Headers[k] = v
	}
	if len(r.Body) > 0 {
		hr.Body = string(r.Body)
		hr.Headers["x-envoy-auth-partial-body"] = "false"
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address:     socketAddress("192.0.2.10", 52344),
			Principal:   r.Principal,
			Certificate: r.PeerCertificate,
		},
		Destination: &authv3.AttributeContext_Peer{
			Address:   socketAddress("192.0.2.1", 443),
			Principal: ProxyID,
		},
		Request:              &authv3.AttributeContext_Request{Time: timestamppb.New(at), Http: hr},
		ContextExtensions:    map[string]string{"certbind_mode": string(r.Mode)},
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}}
}

// Frame is r's CheckRequest in its wire form, marshaled in advance: sending it costs the load
// generator no proto marshaling.
func (r Request) Frame(at time.Time) ([]byte, error) {
	return proto.Marshal(r.CheckRequest(at))
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
