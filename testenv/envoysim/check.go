package envoysim

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certbind/certbind/envoy"
	"github.com/certbind/certbind/testenv/envoyxfcc"
)

// partialBodyHeader tells the authorization server whether the body it got was cut at
// max_request_bytes (Headers::get().EnvoyAuthPartialBody).
const partialBodyHeader = "x-envoy-auth-partial-body"

// requestBody is what ext_authz buffered before the check.
type requestBody struct {
	sent    bool   // with_request_body applied: body and x-envoy-auth-partial-body are sent
	data    []byte // everything read so far (the upstream gets it, then the rest)
	max     int
	partial bool
}

// bufferBody is ext_authz's decodeHeaders/decodeData buffering
// (source/extensions/filters/http/ext_authz/ext_authz.cc): only with with_request_body and a
// request that has a body (not end_stream on headers). Without allow_partial_message the decoder
// buffer limit is max_request_bytes and a larger body is answered 413 by the filter manager; with
// it the check starts once max_request_bytes are buffered, with the body cut to that length.
// tooLarge means the request must be answered 413; err that the client went away.
func bufferBody(r *http.Request, rt envoy.Route) (rb requestBody, tooLarge bool, err error) {
	endStream := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	if !rt.WithRequestBody || endStream {
		return rb, false, nil
	}
	rb.sent, rb.max = true, int(rt.MaxRequestBytes)
	rb.data, err = io.ReadAll(io.LimitReader(r.Body, int64(rb.max)+1))
	if err != nil {
		return rb, false, err
	}
	if len(rb.data) > rb.max {
		if !rt.AllowPartialMessage {
			return rb, true, nil
		}
		rb.partial = true
	}
	return rb, false, nil
}

// upstreamBody is what the router forwards: the buffered bytes, then whatever is left.
func (rb requestBody) upstreamBody(r *http.Request) io.ReadCloser {
	if len(rb.data) == 0 {
		return r.Body
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(rb.data), r.Body), r.Body}
}

// checkRequest is CheckRequestUtils::createHttpCheck
// (source/extensions/filters/common/ext_authz/check_request_utils.cc) with encode_raw_headers,
// pack_as_bytes, include_tls_session, allowed/disallowed_headers and metadata namespaces unset.
func (p *Proxy) checkRequest(st *stream, rt envoy.Route, rb requestBody) *authv3.CheckRequest {
	attrs := &authv3.AttributeContext{
		Source:               &authv3.AttributeContext_Peer{Address: socketAddress(st.remote)},
		Destination:          &authv3.AttributeContext_Peer{Address: socketAddress(st.local)},
		Request:              &authv3.AttributeContext_Request{Time: timestamppb.New(st.start), Http: p.httpRequest(st, rb)},
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}
	// setAttrContextPeer: principal = first URI SAN, else first DNS SAN, else subject (RFC 2253),
	// only on a TLS connection; source.certificate only with include_peer_certificate, empty
	// when the peer sent none.
	if st.tls != nil {
		attrs.Destination.Principal = sanitizeUTF8(p.localName)
		var leaf *x509.Certificate
		if len(st.tls.PeerCertificates) > 0 {
			leaf = st.tls.PeerCertificates[0]
			attrs.Source.Principal = sanitizeUTF8(principal(leaf))
		}
		if p.s.IncludePeerCertificate && leaf != nil {
			attrs.Source.Certificate = envoyxfcc.EncodePEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
		}
	}
	if len(rt.ContextExtensions) > 0 {
		attrs.ContextExtensions = make(map[string]string, len(rt.ContextExtensions))
		for k, v := range rt.ContextExtensions {
			attrs.ContextExtensions[k] = v
		}
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// httpRequest is CheckRequestUtils::setHttpRequest.
func (p *Proxy) httpRequest(st *stream, rb requestBody) *authv3.AttributeContext_HttpRequest {
	hr := &authv3.AttributeContext_HttpRequest{
		Id:       strconv.FormatUint(st.id, 10),
		Method:   sanitizeUTF8(st.method),
		Path:     sanitizeUTF8(st.path),
		Host:     sanitizeUTF8(st.authority),
		Scheme:   sanitizeUTF8(st.scheme),
		Protocol: st.protocol,
		// stream_info.bytesReceived(): body bytes received when the check starts.
		Size:    int64(len(rb.data)),
		Headers: map[string]string{},
	}
	add := func(k, v string) {
		v = sanitizeUTF8(v)
		if prev, ok := hr.Headers[k]; ok {
			hr.Headers[k] = prev + "," + v // "Merge duplicate headers."
			return
		}
		hr.Headers[k] = v
	}
	if st.authority != "" {
		add(":authority", st.authority)
	}
	add(":path", st.path)
	add(":method", st.method)
	add(":scheme", st.scheme)
	for k, vs := range st.header {
		lk := strings.ToLower(k)
		if lk == partialBodyHeader {
			continue // a client-sent copy is skipped
		}
		for _, v := range vs {
			add(lk, v)
		}
	}
	if rb.sent {
		n := min(len(rb.data), rb.max)
		hr.Body = sanitizeUTF8(string(rb.data[:n]))
		hr.Headers[partialBodyHeader] = strconv.FormatBool(n != len(rb.data))
	}
	return hr
}

// socketAddress is Network::Utility::addressToProtobufAddress for an IP address.
func socketAddress(a netip.AddrPort) *corev3.Address {
	if !a.IsValid() {
		return &corev3.Address{}
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       a.Addr().String(),
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(a.Port())},
	}}}
}

// principal is the peer principal rule of setAttrContextPeer for one certificate.
func principal(c *x509.Certificate) string {
	uris, dns := envoyxfcc.SANs(c)
	if len(uris) > 0 {
		return uris[0]
	}
	if len(dns) > 0 {
		return dns[0]
	}
	s, _ := envoyxfcc.FormatSubject(c.RawSubject) // Utility::getSubjectFromCertificate
	return s
}

// sanitizeUTF8 is MessageUtil::sanitizeUtf8String: every byte that is not part of valid UTF-8
// becomes '!'.
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := []byte(s)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			b[i] = '!'
		}
		i += size
	}
	return string(b)
}

// authzResult is the outcome of the check, for the log line.
type authzResult string

const (
	authzSkipped authzResult = "skipped"
	authzAllow   authzResult = "allow"
	authzDeny    authzResult = "deny"
	authzError   authzResult = "error"
	authzInvalid authzResult = "invalid"
)

// check calls the authorization server and acts on the answer like Filter::onComplete and
// GrpcClientImpl::onSuccess/onFailure. It returns true when the request may continue.
func (p *Proxy) check(ctx context.Context, w http.ResponseWriter, st *stream, rt envoy.Route, rb requestBody) (bool, authzResult) {
	ctx, cancel := context.WithTimeout(ctx, p.s.AuthzTimeout)
	defer cancel()
	resp, err := p.authz.Check(ctx, p.checkRequest(st, rt, rb))
	switch {
	case err != nil:
		// A failed RPC or the timeout: status_on_error, empty body (failure_mode_allow false).
		p.localReply(w, st, int(p.s.StatusOnError), "", nil)
		return false, authzError
	case resp.GetStatus().GetCode() == 0:
		if !p.applyOK(st, resp.GetOkResponse()) {
			// Filter::rejectResponse.
			p.localReply(w, st, http.StatusInternalServerError, "", nil)
			return false, authzInvalid
		}
		return true, authzAllow
	case resp.GetErrorResponse() != nil:
		// An error, not a denial: its status, or status_on_error.
		er := resp.GetErrorResponse()
		code := int(er.GetStatus().GetCode())
		if code == 0 {
			code = int(p.s.StatusOnError)
		}
		p.localReply(w, st, validStatus(code), er.GetBody(), replaceHeaders(er.GetHeaders()))
		return false, authzError
	default:
		den := resp.GetDeniedResponse()
		code := int(den.GetStatus().GetCode())
		if code == 0 {
			code = http.StatusForbidden
		}
		p.localReply(w, st, validStatus(code), den.GetBody(), replaceHeaders(den.GetHeaders()))
		return false, authzDeny
	}
}

// validStatus keeps a status Go can send as a final response; anything else is answered 500.
func validStatus(code int) int {
	if code < 200 || code > 599 {
		return http.StatusInternalServerError
	}
	return code
}

// replaceHeaders is the local reply callback of a denial: every named header is first
// removed, then each entry added (so repeated Set-Cookie entries all arrive).
func replaceHeaders(hs []*corev3.HeaderValueOption) func(http.Header) {
	return func(h http.Header) {
		for _, hv := range hs {
			h.Del(hv.GetHeader().GetKey())
		}
		for _, hv := range hs {
			h.Add(hv.GetHeader().GetKey(), hv.GetHeader().GetValue())
		}
	}
}
