package envoy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// ErrUnsupported: Summarize met a config its stand-in model cannot represent faithfully.
var ErrUnsupported = errors.New("not supported by Summarize")

// Defaults Envoy applies when the ext_authz filter leaves them unset.
const (
	defaultAuthzTimeout  = 200 * time.Millisecond // grpc_service.timeout
	defaultStatusOnError = 403                    // status_on_error: Forbidden
)

// Route is one route as an Envoy stand-in needs it, with the ext_authz per-route settings merged
// from route configuration, virtual host and route as Envoy merges them.
type Route struct {
	// Prefix or Path (exact) is the path match; exactly one is set.
	Prefix, Path string
	// Cluster the route forwards to; empty for a direct response.
	Cluster string
	// DirectResponseStatus is the status of a direct_response route, 0 otherwise.
	DirectResponseStatus uint32
	// AuthzDisabled: ext_authz is off for this route (no check at all).
	AuthzDisabled bool
	// ContextExtensions sent in the CheckRequest (certbind_mode); nil if none.
	ContextExtensions map[string]string
	// WithRequestBody: Envoy buffers the body, up to MaxRequestBytes, and sends it to certbind.
	// Without AllowPartialMessage a larger body gets 413 and no check.
	WithRequestBody     bool
	MaxRequestBytes     uint32
	AllowPartialMessage bool
}

// Details is set_current_client_cert_details.
type Details struct{ Subject, Cert, Chain, URI, DNS bool }

// Summary is what an Envoy stand-in needs to behave like the config: listener, XFCC handling,
// ext_authz settings (with Envoy's defaults filled in) and routes, in match order.
type Summary struct {
	ListenerAddress        string // host:port
	ForwardMode            string // forward_client_cert_details enum name, e.g. SANITIZE_SET
	Details                Details
	IncludePeerCertificate bool
	AuthzCluster           string
	AuthzTimeout           time.Duration // grpc_service.timeout, 200ms when unset
	StatusOnError          uint32        // status_on_error, 403 when unset
	Routes                 []Route
	AcceptUntrusted        bool // trust_chain_verification: ACCEPT_UNTRUSTED
}

// Summarize extracts a Summary from a loaded bootstrap with one static listener, one HTTP
// connection manager with one gRPC ext_authz filter, and one virtual host of prefix or path routes.
// Anything else fails with ErrUnsupported rather than be simplified away.
func Summarize(b *bootstrapv3.Bootstrap) (Summary, error) {
	var s Summary
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		return s, unsupported("static_resources.listeners", "%d listeners, want 1", len(ls))
	}
	sa := ls[0].GetAddress().GetSocketAddress()
	if sa == nil {
		return s, unsupported("static_resources.listeners[0].address", "not a socket address")
	}
	s.ListenerAddress = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))

	ss, bad := sites(b)
	if len(bad) > 0 {
		return s, fmt.Errorf("envoy: %s: %s", bad[0].Path, bad[0].Message)
	}
	if len(ss) != 1 {
		return s, unsupported("static_resources.listeners[0]", "%d HTTP connection managers, want 1", len(ss))
	}
	site := ss[0]
	if len(site.authz) != 1 {
		return s, unsupported(site.path+".http_filters", "%d ext_authz filters, want 1", len(site.authz))
	}
	f := site.authz[0]
	if f.disabled {
		return s, unsupported(fmt.Sprintf("%s.http_filters[%d].disabled", site.path, f.index), "ext_authz disabled by default")
	}
	// The stand-in always terminates mutual TLS: a listener that does not require a client
	// certificate against a trusted_ca would be simulated stricter than Envoy runs it.
	if site.tls == nil {
		return s, unsupported(site.chainPath, "no DownstreamTlsContext")
	}
	if !site.tls.GetRequireClientCertificate().GetValue() {
		return s, unsupported(site.tlsPath+".require_client_certificate", "not true")
	}
	vc := validationContext(site.tls.GetCommonTlsContext())
	if vc.GetTrustedCa() == nil {
		return s, unsupported(site.tlsPath+".common_tls_context.validation_context.trusted_ca", "missing")
	}
	s.AcceptUntrusted = vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED

	hcm := site.hcm
	s.ForwardMode = hcm.GetForwardClientCertDetails().String()
	d := hcm.GetSetCurrentClientCertDetails()
	s.Details = Details{Subject: d.GetSubject().GetValue(), Cert: d.GetCert(), Chain: d.GetChain(), URI: d.GetUri(), DNS: d.GetDns()}

	c := f.cfg
	s.IncludePeerCertificate = c.GetIncludePeerCertificate()
	eg := c.GetGrpcService().GetEnvoyGrpc()
	if eg == nil {
		return s, unsupported(f.path, "ext_authz without grpc_service.envoy_grpc")
	}
	s.AuthzCluster = eg.GetClusterName()
	s.AuthzTimeout = defaultAuthzTimeout
	if t := c.GetGrpcService().GetTimeout(); t != nil {
		s.AuthzTimeout = t.AsDuration()
	}
	s.StatusOnError = defaultStatusOnError
	if code := c.GetStatusOnError().GetCode(); code != 0 {
		s.StatusOnError = uint32(code)
	}

	rc := hcm.GetRouteConfig()
	rcPath := site.path + ".route_config"
	if rc == nil {
		return s, unsupported(site.path, "routes not inline (rds or scoped_routes)")
	}
	if n := len(rc.GetVirtualHosts()); n != 1 {
		return s, unsupported(rcPath+".virtual_hosts", "%d virtual hosts, want 1", n)
	}
	for ri, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		rp := fmt.Sprintf("%s.virtual_hosts[0].routes[%d]", rcPath, ri)
		sr, err := summarizeRoute(r, rp)
		if err != nil {
			return s, err
		}
		pr := mergePerRoute(f.name, routeLevels(rcPath, rc, 0, ri)...)
		sr.AuthzDisabled = pr.disabled
		if !pr.disabled {
			sr.ContextExtensions = pr.ext
			if body := pr.requestBody(c); body != nil {
				sr.WithRequestBody = true
				sr.MaxRequestBytes = body.GetMaxRequestBytes()
				sr.AllowPartialMessage = body.GetAllowPartialMessage()
			}
		}
		s.Routes = append(s.Routes, sr)
	}
	return s, nil
}

func summarizeRoute(r *routev3.Route, path string) (Route, error) {
	var sr Route
	m := r.GetMatch()
	if len(m.GetHeaders())+len(m.GetQueryParameters())+len(m.GetCookies())+len(m.GetDynamicMetadata())+len(m.GetFilterState()) > 0 ||
		m.GetGrpc() != nil || m.GetTlsContext() != nil || m.GetRuntimeFraction() != nil ||
		(m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()) {
		return sr, unsupported(path+".match", "match conditions beyond a case-sensitive path or prefix")
	}
	switch m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		sr.Prefix = m.GetPrefix()
	case *routev3.RouteMatch_Path:
		sr.Path = m.GetPath()
	default:
		return sr, unsupported(path+".match", "path specifier other than prefix or path")
	}
	switch r.GetAction().(type) {
	case *routev3.Route_Route:
		if _, ok := r.GetRoute().GetClusterSpecifier().(*routev3.RouteAction_Cluster); !ok {
			return sr, unsupported(path+".route", "cluster specifier other than cluster")
		}
		sr.Cluster = r.GetRoute().GetCluster()
	case *routev3.Route_DirectResponse:
		sr.DirectResponseStatus = r.GetDirectResponse().GetStatus()
	default:
		return sr, unsupported(path, "action other than route or direct_response")
	}
	return sr, nil
}

func unsupported(path, format string, args ...any) error {
	return fmt.Errorf("envoy: %s: %s: %w", path, fmt.Sprintf(format, args...), ErrUnsupported)
}
