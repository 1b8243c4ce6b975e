package envoysim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/certbind/certbind/testenv/envoyxfcc"
)

// stream is one request as Envoy's header map holds it: pseudo-headers apart, regular headers in
// an http.Header (canonical keys; Envoy's are lower case, the CheckRequest lower-cases them).
type stream struct {
	id        uint64 // Envoy's stream id: random
	start     time.Time
	method    string
	authority string
	path      string
	scheme    string
	protocol  string // getProtocolString: "HTTP/1.0", "HTTP/1.1", "HTTP/2"
	header    http.Header
	remote    netip.AddrPort
	local     netip.AddrPort
	tls       *tls.ConnectionState

	respMutations   []mutation // ok_response.response_headers_to_add
	upstreamCluster string
	upstreamStart   time.Time
}

type streamKey struct{}

func streamFrom(ctx context.Context) *stream {
	st, _ := ctx.Value(streamKey{}).(*stream)
	return st
}

func newStream(r *http.Request) *stream {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	st := &stream{
		id:        binary.BigEndian.Uint64(idb[:]),
		start:     time.Now(),
		method:    r.Method,
		authority: r.Host,
		path:      r.RequestURI,
		header:    r.Header.Clone(),
		tls:       r.TLS,
	}
	if st.header == nil {
		st.header = http.Header{}
	}
	switch {
	case r.ProtoMajor == 2:
		st.protocol = "HTTP/2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		st.protocol = "HTTP/1.0"
	default:
		st.protocol = "HTTP/1.1"
	}
	// Absolute-form request target (HTTP/1): Envoy's codec takes :authority and :path from it.
	if !strings.HasPrefix(st.path, "/") {
		if u, err := url.Parse(st.path); err == nil && u.IsAbs() && u.Host != "" {
			st.authority = u.Host
			rest := st.path[len(u.Scheme)+len("://")+len(u.Host):]
			if rest == "" || rest[0] == '?' {
				rest = "/" + rest
			}
			st.path = rest
		}
	}
	st.remote, _ = netip.ParseAddrPort(r.RemoteAddr)
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		st.local, _ = netip.ParseAddrPort(a.String())
	}
	st.remote = unmapAddrPort(st.remote)
	st.local = unmapAddrPort(st.local)
	return st
}

func unmapAddrPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// mutateRequestHeaders is ConnectionManagerUtility::mutateRequestHeaders
// (source/common/http/conn_manager_utility.cc) for this listener: use_remote_address true,
// xff_num_trusted_hops 0, no internal addresses (an empty internal_address_config: every
// request is an edge request), generate_request_id true, preserve_external_request_id false;
// then mutateXfccRequestHeader.
func (p *Proxy) mutateRequestHeaders(st *stream) {
	h := st.header
	// Connection-specific headers (upgrades are refused before this point).
	for _, k := range []string{"Connection", "Upgrade", "X-Envoy-Internal", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding"} {
		h.Del(k)
	}
	sanitizeTE(h)
	// A request carries at most one Referer, and it must be valid (Utility::isValidRefererValue
	// with http_allow_partial_urls_in_referer, on by default).
	if refs := h.Values("Referer"); len(refs) > 0 && (len(refs) > 1 || !validReferer(refs[0])) {
		h.Del("Referer")
	}
	// proxy_100_continue is off: Envoy answers Expect: 100-continue itself and drops the header.
	if strings.EqualFold(h.Get("Expect"), "100-continue") {
		h.Del("Expect")
	}

	// use_remote_address: append the peer to X-Forwarded-For (Utility::appendXff, "," without a
	// space). A loopback peer is replaced by Envoy's own address, here the listener's.
	peer := st.remote.Addr()
	if peer.IsLoopback() && st.local.IsValid() {
		peer = st.local.Addr()
	}
	if peer.IsValid() {
		appendHeader(h, "X-Forwarded-For", peer.String(), ",")
	}
	// The prior hop is untrusted: x-forwarded-proto is the connection's.
	xfp := "http"
	if st.tls != nil {
		xfp = "https"
	}
	h.Set("X-Forwarded-Proto", xfp)
	// HTTP/1 has no :scheme; HCM sets it from x-forwarded-proto when valid.
	if st.scheme == "" {
		st.scheme = xfp
	}

	// cleanInternalHeaders for an edge request.
	for _, k := range edgeStrippedHeaders {
		h.Del(k)
	}
	if st.remote.IsValid() {
		h.Set("X-Envoy-External-Address", st.remote.Addr().String())
	}
	// generate_request_id at the edge: always a fresh UUID.
	h.Set("X-Request-Id", newUUID())

	p.mutateXFCC(st)
}

// edgeStrippedHeaders are the x-envoy-* request headers cleanInternalHeaders removes from an
// edge request. Other client-sent x-envoy-* headers pass, as in Envoy.
var edgeStrippedHeaders = []string{
	"X-Envoy-Decorator-Operation",
	"X-Envoy-Downstream-Service-Cluster",
	"X-Envoy-Downstream-Service-Node",
	"X-Envoy-Retriable-Status-Codes",
	"X-Envoy-Retriable-Header-Names",
	"X-Envoy-Retry-On",
	"X-Envoy-Retry-Grpc-On",
	"X-Envoy-Max-Retries",
	"X-Envoy-Upstream-Alt-Stat-Name",
	"X-Envoy-Upstream-Rq-Timeout-Ms",
	"X-Envoy-Upstream-Rq-Per-Try-Timeout-Ms",
	"X-Envoy-Upstream-Rq-Timeout-Alt-Response",
	"X-Envoy-Expected-Rq-Timeout-Ms",
	"X-Envoy-Force-Trace",
	"X-Envoy-Ip-Tags",
	"X-Envoy-Original-Url",
	"X-Envoy-Hedge-On-Per-Try-Timeout",
}

// mutateXFCC is mutateXfccRequestHeader: Envoy's element for this connection (envoyxfcc.Build with
// the listener's leaf and the chain as the client sent it) combined with the client-sent header
// per forward_client_cert_details (envoyxfcc.Mutate).
func (p *Proxy) mutateXFCC(st *stream) {
	const key = "X-Forwarded-Client-Cert"
	vals := st.header.Values(key)
	mtls := st.tls != nil && len(st.tls.PeerCertificates) > 0
	element := ""
	if mtls {
		element = envoyxfcc.Build(p.leaf, st.tls.PeerCertificates, p.details)
	}
	// Envoy coalesces repeated XFCC headers with ',' when it parses the request.
	v, ok := envoyxfcc.Mutate(strings.Join(vals, ","), len(vals) > 0, mtls, p.mode, element)
	if ok {
		st.header.Set(key, v)
	} else {
		st.header.Del(key)
	}
}

// sanitizeTE is ConnectionManagerUtility::sanitizeTEHeader: TE is kept only as "trailers".
func sanitizeTE(h http.Header) {
	vals := h.Values("Te")
	if len(vals) == 0 {
		return
	}
	for _, v := range strings.Split(strings.Join(vals, ","), ",") {
		if strings.TrimSpace(v) == "trailers" {
			h.Set("Te", "trailers")
			return
		}
	}
	h.Del("Te")
}

// appendHeader is HeaderMap::appendCopy: value joined to the first existing entry with delim,
// or added.
func appendHeader(h http.Header, key, value, delim string) {
	k := http.CanonicalHeaderKey(key)
	if vs := h[k]; len(vs) > 0 {
		if vs[0] == "" {
			vs[0] = value
		} else {
			vs[0] += delim + value
		}
		return
	}
	h[k] = []string{value}
}

// isUpgrade is Utility::isUpgrade: Connection lists "upgrade" and an Upgrade header is present.
func isUpgrade(h http.Header) bool {
	if len(h.Values("Upgrade")) == 0 {
		return false
	}
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// newUUID is a random (version 4) UUID, as Envoy's UUIDRequestIDExtension generates.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// validReferer is Envoy's Utility::isValidRefererValue: an absolute URL without fragment or
// userinfo, or a relative reference whose first segment has no ':' and whose characters are
// all allowed in a URI query or fragment (RFC 3986 section 3.4).
func validReferer(v string) bool {
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
		return u.User == nil && !strings.Contains(v, "#")
	}
	seenSlash := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == ':':
			if !seenSlash {
				return false
			}
		case c == '/':
			seenSlash = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~%!$&'()*+,;=@?", c) >= 0:
		default:
			return false
		}
	}
	return true
}
