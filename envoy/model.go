package envoy

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// What Lint and Summarize read from a bootstrap: each HTTP connection manager of a static listener,
// with the TLS context of its filter chain and its ext_authz filters. Filters are recognised by the
// type of their typed_config, as Envoy does, not by their name.

// site is one HTTP connection manager in a listener's filter chain.
type site struct {
	listener     *listenerv3.Listener
	listenerPath string
	chainPath    string
	chain        *listenerv3.FilterChain
	tls          *tlsv3.DownstreamTlsContext // nil: plaintext (or a transport socket we do not know)
	tlsPath      string                      // of the DownstreamTlsContext (transport_socket.typed_config)
	path         string                      // of the HCM (filters[i].typed_config)
	hcm          *hcmv3.HttpConnectionManager
	authz        []authzFilter
	router       int // index of the router in http_filters, -1 if none
}

// authzFilter is one ext_authz HTTP filter.
type authzFilter struct {
	path     string // of its typed_config
	index    int    // in http_filters
	name     string // HttpFilter.name: the key of its per-route configs
	disabled bool   // HttpFilter.disabled: off unless a route enables it
	cfg      *extauthzv3.ExtAuthz
}

// sites lists the HTTP connection managers of the static listeners. A typed_config that does not
// unpack is reported as a finding (Load would have refused it).
func sites(b *bootstrapv3.Bootstrap) ([]site, []Finding) {
	var out []site
	var bad []Finding
	for li, l := range b.GetStaticResources().GetListeners() {
		lp := fmt.Sprintf("static_resources.listeners[%d]", li)
		chains := map[string]*listenerv3.FilterChain{}
		var order []string
		for ci, c := range l.GetFilterChains() {
			p := fmt.Sprintf("%s.filter_chains[%d]", lp, ci)
			chains[p], order = c, append(order, p)
		}
		if c := l.GetDefaultFilterChain(); c != nil {
			p := lp + ".default_filter_chain"
			chains[p], order = c, append(order, p)
		}
		for _, cp := range order {
			c := chains[cp]
			var tls *tlsv3.DownstreamTlsContext
			tlsPath := cp + ".transport_socket.typed_config"
			if tc := c.GetTransportSocket().GetTypedConfig(); tc != nil {
				m, err := unpack(tc)
				if err != nil && !unknownExtension(err) {
					bad = append(bad, errorf(tlsPath, "cannot unpack: %v", err))
				}
				tls, _ = m.(*tlsv3.DownstreamTlsContext)
			}
			for fi, f := range c.GetFilters() {
				fp := fmt.Sprintf("%s.filters[%d].typed_config", cp, fi)
				hcm, err := unpackAs[*hcmv3.HttpConnectionManager](f.GetTypedConfig())
				if err != nil && !unknownExtension(err) {
					bad = append(bad, errorf(fp, "cannot unpack: %v", err))
				}
				if hcm == nil {
					continue
				}
				s := site{listener: l, listenerPath: lp, chainPath: cp, chain: c, tls: tls, tlsPath: tlsPath, path: fp, hcm: hcm, router: -1}
				for hi, hf := range hcm.GetHttpFilters() {
					hp := fmt.Sprintf("%s.http_filters[%d].typed_config", fp, hi)
					m, err := unpackOrNil(hf.GetTypedConfig())
					if err != nil && !unknownExtension(err) {
						bad = append(bad, errorf(hp, "cannot unpack: %v", err))
					}
					switch cfg := m.(type) {
					case *extauthzv3.ExtAuthz:
						s.authz = append(s.authz, authzFilter{path: hp, index: hi, name: hf.GetName(), disabled: hf.GetDisabled(), cfg: cfg})
					case *routerv3.Router:
						if s.router < 0 {
							s.router = hi
						}
					}
				}
				out = append(out, s)
			}
		}
	}
	return out, bad
}

func unpackOrNil(a *anypb.Any) (proto.Message, error) {
	if a == nil {
		return nil, nil
	}
	return unpack(a)
}

// unpackAs unpacks a into T; a nil T and nil error when a is nil or holds another type.
func unpackAs[T proto.Message](a *anypb.Any) (T, error) {
	var zero T
	m, err := unpackOrNil(a)
	if err != nil || m == nil {
		return zero, err
	}
	t, _ := m.(T)
	return t, nil
}

// perRoute is the ext_authz per-route config in force for one route, merged as Envoy merges it
// (Http::Utility::getMergedPerFilterConfig): route configuration, then virtual host, then route;
// context_extensions merge with the more specific key winning, the other settings come from the
// most specific level that sets them.
type perRoute struct {
	disabled     bool
	ext          map[string]string
	extPath      map[string]string // path of the entry that set each key
	body         *extauthzv3.BufferSettings
	bodyDisabled bool // check_settings.disable_request_body_buffering
	// configured: some level has a config for the filter. A filter disabled by default
	// (HttpFilter.disabled) runs on a route only where one is, and it does not disable it.
	configured bool
}

// level is one place a per-route config can sit.
type level struct {
	path string // of the typed_per_filter_config map
	cfg  map[string]*anypb.Any
}

// extAuthzPerRoute reads the per-route config of the filter named name from one level: an
// ExtAuthzPerRoute, possibly wrapped in a route FilterConfig (whose disabled also turns the
// filter off). ok is false when the level has none for that name.
func extAuthzPerRoute(l level, name string) (cfg *extauthzv3.ExtAuthzPerRoute, disabled bool, path string, ok bool) {
	a, found := l.cfg[name]
	if !found {
		return nil, false, "", false
	}
	path = mapPath(l.path, name)
	m, err := unpack(a)
	if err != nil {
		return nil, false, path, false
	}
	if fc, isFC := m.(*routev3.FilterConfig); isFC {
		if fc.GetDisabled() {
			return nil, true, path, true
		}
		m, err = unpackOrNil(fc.GetConfig())
		if err != nil {
			return nil, false, path, false
		}
		path += ".config"
	}
	cfg, isExt := m.(*extauthzv3.ExtAuthzPerRoute)
	if !isExt {
		return nil, false, path, false
	}
	return cfg, cfg.GetDisabled(), path, true
}

// mergePerRoute resolves ExtAuthzPerRoute over the levels, least specific first, as Envoy
// does: context_extensions merge across levels, while disabled and the rest of check_settings
// (the request body) come from the most specific level that has a config, whole.
func mergePerRoute(name string, levels ...level) perRoute {
	var pr perRoute
	for _, l := range levels {
		cfg, disabled, path, ok := extAuthzPerRoute(l, name)
		if !ok {
			continue
		}
		pr.disabled, pr.body, pr.bodyDisabled, pr.configured = disabled, nil, false, true
		cs := cfg.GetCheckSettings()
		if cs == nil {
			continue
		}
		for k, v := range cs.GetContextExtensions() {
			if pr.ext == nil {
				pr.ext, pr.extPath = map[string]string{}, map[string]string{}
			}
			pr.ext[k] = v
			pr.extPath[k] = mapPath(path+".check_settings.context_extensions", k)
		}
		pr.body = cs.GetWithRequestBody()
		if cs.GetDisableRequestBodyBuffering() {
			pr.body, pr.bodyDisabled = nil, true
		}
	}
	return pr
}

// active says whether the filter f runs on a route with this per-route config: not disabled
// there, and, for a filter disabled by default, enabled there.
func (pr perRoute) active(f authzFilter) bool {
	return !pr.disabled && (!f.disabled || pr.configured)
}

// requestBody is the body buffering in force for a route: per-route settings, else the filter's.
func (pr perRoute) requestBody(f *extauthzv3.ExtAuthz) *extauthzv3.BufferSettings {
	switch {
	case pr.body != nil:
		return pr.body
	case pr.bodyDisabled:
		return nil
	}
	return f.GetWithRequestBody()
}

// routeLevels are the per-route config levels of route ri of virtual host vi, least specific first.
func routeLevels(rcPath string, rc *routev3.RouteConfiguration, vi, ri int) []level {
	vh := rc.GetVirtualHosts()[vi]
	vp := fmt.Sprintf("%s.virtual_hosts[%d]", rcPath, vi)
	ls := []level{
		{path: rcPath + ".typed_per_filter_config", cfg: rc.GetTypedPerFilterConfig()},
		{path: vp + ".typed_per_filter_config", cfg: vh.GetTypedPerFilterConfig()},
	}
	if ri >= 0 {
		ls = append(ls, level{path: fmt.Sprintf("%s.routes[%d].typed_per_filter_config", vp, ri), cfg: vh.GetRoutes()[ri].GetTypedPerFilterConfig()})
	}
	return ls
}

// catchAllRegex are safe_regex patterns that match every path.
var catchAllRegex = map[string]bool{".*": true, "^.*$": true, "/.*": true, "^/.*$": true, ".+": true, "^.+$": true}

// isCatchAll reports whether a route matches every request. path_separated_prefix cannot: its
// validation rule forbids a trailing "/".
func isCatchAll(m *routev3.RouteMatch) bool {
	if len(m.GetHeaders())+len(m.GetQueryParameters())+len(m.GetCookies())+len(m.GetDynamicMetadata())+len(m.GetFilterState()) > 0 ||
		m.GetGrpc() != nil || m.GetTlsContext() != nil || m.GetRuntimeFraction() != nil {
		return false
	}
	switch m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		return m.GetPrefix() == "/" || m.GetPrefix() == ""
	case *routev3.RouteMatch_SafeRegex:
		return catchAllRegex[m.GetSafeRegex().GetRegex()]
	}
	return false
}

// staticCluster finds a static cluster by name.
func staticCluster(b *bootstrapv3.Bootstrap, name string) (*clusterv3.Cluster, int) {
	for i, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c, i
		}
	}
	return nil, -1
}
