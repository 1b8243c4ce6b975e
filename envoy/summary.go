package envoy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
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
	var err error
	if s.ListenerAddress, err = listenerAddress(b); err != nil {
		return s, err
	}
	site, f, err := authzSite(b)
	if err != nil {
		return s, err
	}
	if s.AcceptUntrusted, err = acceptUntrusted(site); err != nil {
		return s, err
	}
	s.ForwardMode, s.Details = clientCertDetails(site.hcm)
	if err := s.summarizeAuthz(f); err != nil {
		return s, err
	}
	s.Routes, err = summarizeRoutes(site, f)
	return s, err
}

// listenerAddress is the host:port of the one static listener.
func listenerAddress(b *bootstrapv3.Bootstrap) (string, error) {
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		return "", unsupported("static_resources.listeners", "%d listeners, want 1", len(ls))
	}
	sa := ls[0].GetAddress().GetSocketAddress()
	if sa == nil {
		return "", unsupported("static_resources.listeners[0].address", "not a socket address")
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10)), nil
}

// authzSite is the one HTTP connection manager and its one ext_authz filter, enabled by default.
func authzSite(b *bootstrapv3.Bootstrap) (site, authzFilter, error) {
	ss, bad := sites(b)
	if len(bad) > 0 {
		return site{}, authzFilter{}, fmt.Errorf("envoy: %s: %s", bad[0].Path, bad[0].Message)
	}
	if len(ss) != 1 {
		return site{}, authzFilter{}, unsupported("static_resources.listeners[0]", "%d HTTP connection managers, want 1", len(ss))
	}
	st := ss[0]
	if len(st.authz) != 1 {
		return st, authzFilter{}, unsupported(st.path+".http_filters", "%d ext_authz filters, want 1", len(st.authz))
	}
	f := st.authz[0]
	if f.disabled {
		return st, f, unsupported(fmt.Sprintf("%s.http_filters[%d].disabled", st.path, f.index), "ext_authz disabled by default")
	}
	return st, f, nil
}

// acceptUntrusted checks that the site terminates mutual TLS against a trusted_ca and reports
// whether its trust_chain_verification is ACCEPT_UNTRUSTED. The stand-in always terminates
// mutual TLS: a listener that does not require a client certificate against a trusted_ca would
// be simulated stricter than Envoy runs it.
func acceptUntrusted(st site) (bool, error) {
	if st.tls == nil {
		return false, unsupported(st.chainPath, "no DownstreamTlsContext")
	}
	if !st.tls.GetRequireClientCertificate().GetValue() {
		return false, unsupported(st.tlsPath+".require_client_certificate", "not true")
	}
	vc := validationContext(st.tls.GetCommonTlsContext())
	if vc.GetTrustedCa() == nil {
		return false, unsupported(st.tlsPath+".common_tls_context.validation_context.trusted_ca", "missing")
	}
	return vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED, nil
}

// clientCertDetails is the connection manager's forward_client_cert_details (its enum name) and
// set_current_client_cert_details.
func clientCertDetails(hcm *hcmv3.HttpConnectionManager) (string, Details) {
	d := hcm.GetSetCurrentClientCertDetails()
	return hcm.GetForwardClientCertDetails().String(),
		Details{Subject: d.GetSubject().GetValue(), Cert: d.GetCert(), Chain: d.GetChain(), URI: d.GetUri(), DNS: d.GetDns()}
}

// summarizeAuthz fills in the ext_authz filter's settings, with Envoy's defaults for those unset.
func (s *Summary) summarizeAuthz(f authzFilter) error {
	c := f.cfg
	s.IncludePeerCertificate = c.GetIncludePeerCertificate()
	eg := c.GetGrpcService().GetEnvoyGrpc()
	if eg == nil {
		return unsupported(f.path, "ext_authz without grpc_service.envoy_grpc")
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
	return nil
}

// summarizeRoutes lists the routes of the one inline virtual host, in match order, each with
// filter f's per-route settings merged.
func summarizeRoutes(st site, f authzFilter) ([]Route, error) {
	rc := st.hcm.GetRouteConfig()
	rcPath := st.path + ".route_config"
	if rc == nil {
		return nil, unsupported(st.path, "routes not inline (rds or scoped_routes)")
	}
	if n := len(rc.GetVirtualHosts()); n != 1 {
		return nil, unsupported(rcPath+".virtual_hosts", "%d virtual hosts, want 1", n)
	}
	var routes []Route
	for ri, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		rp := fmt.Sprintf("%s.virtual_hosts[0].routes[%d]", rcPath, ri)
		sr, err := summarizeRoute(r, rp)
		if err != nil {
			return routes, err
		}
		sr.applyPerRoute(mergePerRoute(f.name, routeLevels(rcPath, rc, 0, ri)...), f.cfg)
		routes = append(routes, sr)
	}
	return routes, nil
}

// applyPerRoute sets the route's ext_authz settings from its merged per-route config pr over
// the filter's own config c.
func (sr *Route) applyPerRoute(pr perRoute, c *extauthzv3.ExtAuthz) {
	sr.AuthzDisabled = pr.disabled
	if pr.disabled {
		return
	}
	sr.ContextExtensions = pr.ext
	if body := pr.requestBody(c); body != nil {
		sr.WithRequestBody = true
		sr.MaxRequestBytes = body.GetMaxRequestBytes()
		sr.AllowPartialMessage = body.GetAllowPartialMessage()
	}
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
