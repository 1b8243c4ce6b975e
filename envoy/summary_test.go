package envoy

import (
	"errors"
	"reflect"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// shippedRoutes are the routes of both shipped configs, in match order.
var shippedRoutes = []Route{
	{Path: "/healthz", DirectResponseStatus: 200, AuthzDisabled: true},
	{Prefix: "/oauth2/token", Cluster: "as", ContextExtensions: map[string]string{"certbind_mode": "client_auth"},
		WithRequestBody: true, MaxRequestBytes: 8192, AllowPartialMessage: false},
	{Prefix: "/.well-known/", Cluster: "as", AuthzDisabled: true},
	{Prefix: "/api/", Cluster: "api", ContextExtensions: map[string]string{"certbind_mode": "bound_token"}},
	{Prefix: "/internal/", Cluster: "api", ContextExtensions: map[string]string{"certbind_mode": "identity"}},
	{Prefix: "/", Cluster: "api", ContextExtensions: map[string]string{"certbind_mode": "identity"}},
}

func TestSummarizeShippedConfigs(t *testing.T) {
	common := Summary{
		ForwardMode:            "SANITIZE_SET",
		Details:                Details{Subject: true, Cert: true, Chain: true},
		IncludePeerCertificate: true,
		AuthzCluster:           "certbind",
		AuthzTimeout:           500 * time.Millisecond,
		StatusOnError:          503,
		Routes:                 shippedRoutes,
	}
	main, selfSigned := common, common
	main.ListenerAddress = "0.0.0.0:8443"
	selfSigned.ListenerAddress = "0.0.0.0:8444"
	selfSigned.AcceptUntrusted = true

	for name, want := range map[string]Summary{mainConfig: main, selfSignedConfig: selfSigned} {
		t.Run(name, func(t *testing.T) {
			b, err := LoadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Summarize(b)
			if err != nil {
				t.Fatalf("Summarize: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Summarize\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestSummarizeDefaultsAndMerging(t *testing.T) {
	cfg := readConfig(t, mainConfig)
	cfg, _ = replace(t, cfg, "                # Per-check deadline (Envoy's default is 200ms).\n                timeout: 0.5s\n", "")
	cfg, _ = replace(t, cfg, "              status_on_error: { code: 503 }\n", "")
	// A virtual-host level extension reaches every checked route; a route's own key wins.
	cfg, _ = replace(t, cfg, `domains: ["*"]`+"\n", `domains: ["*"]`+"\n"+`              typed_per_filter_config:
                envoy.filters.http.ext_authz:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                  check_settings: { context_extensions: { tenant: test, certbind_mode: identity } }
`)
	s, err := Summarize(mustLoad(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthzTimeout != 200*time.Millisecond || s.StatusOnError != 403 {
		t.Errorf("defaults: timeout %v, status_on_error %d; want 200ms, 403", s.AuthzTimeout, s.StatusOnError)
	}
	wantExt := []map[string]string{
		nil,
		{"tenant": "test", "certbind_mode": "client_auth"},
		nil,
		{"tenant": "test", "certbind_mode": "bound_token"},
		{"tenant": "test", "certbind_mode": "identity"},
		{"tenant": "test", "certbind_mode": "identity"},
	}
	for i, r := range s.Routes {
		if !reflect.DeepEqual(r.ContextExtensions, wantExt[i]) {
			t.Errorf("route %d context_extensions %v, want %v", i, r.ContextExtensions, wantExt[i])
		}
	}
}

func TestSummarizeUnsupported(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*testing.T, *bootstrapv3.Bootstrap)
		path   string
	}{
		{
			name: "two listeners",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				sr := b.GetStaticResources()
				sr.Listeners = append(sr.Listeners, proto.Clone(sr.Listeners[0]).(*listenerv3.Listener))
			},
			path: "static_resources.listeners",
		},
		{
			name: "regex route",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[5].Match.PathSpecifier =
						&routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}
				})
			},
			path: routesPath + "[5].match",
		},
		{
			name: "two virtual hosts",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					rc := h.GetRouteConfig()
					vh := proto.Clone(rc.VirtualHosts[0]).(*routev3.VirtualHost)
					vh.Name, vh.Domains = "other", []string{"other.test"}
					rc.VirtualHosts = append(rc.VirtualHosts, vh)
				})
			},
			path: hcmPath + ".route_config.virtual_hosts",
		},
		{
			name: "ext_authz disabled by default",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters[0].Disabled = true })
			},
			path: hcmPath + ".http_filters[0].disabled",
		},
		{
			name: "client certificate not required",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editTLS(t, b, func(tc *tlsv3.DownstreamTlsContext) { tc.RequireClientCertificate = nil })
			},
			path: tlsPath + ".require_client_certificate",
		},
		{
			name: "no trusted_ca",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editTLS(t, b, func(tc *tlsv3.DownstreamTlsContext) { tc.GetCommonTlsContext().GetValidationContext().TrustedCa = nil })
			},
			path: tlsPath + ".common_tls_context.validation_context.trusted_ca",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustLoad(t, readConfig(t, mainConfig))
			tt.mutate(t, b)
			_, err := Summarize(b)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is not ErrUnsupported", err)
			}
			if want := "envoy: " + tt.path + ": "; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

// envoy-self-signed.yaml is envoy.yaml but for its listener's name, port and trust policy.
func TestSelfSignedConfigDiffersOnlyInListener(t *testing.T) {
	main := mustLoad(t, readConfig(t, mainConfig))
	self := mustLoad(t, readConfig(t, selfSignedConfig))
	l := self.GetStaticResources().GetListeners()[0]
	l.Name = main.GetStaticResources().GetListeners()[0].GetName()
	l.GetAddress().GetSocketAddress().PortSpecifier = main.GetStaticResources().GetListeners()[0].GetAddress().GetSocketAddress().GetPortSpecifier()
	ts := l.GetFilterChains()[0].GetTransportSocket()
	tc := &tlsv3.DownstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(tc); err != nil {
		t.Fatal(err)
	}
	tc.GetCommonTlsContext().GetValidationContext().TrustChainVerification = tlsv3.CertificateValidationContext_VERIFY_TRUST_CHAIN
	ts.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, tc)}

	want, err := protojson.Marshal(main)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protojson.Marshal(self)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s and %s differ beyond the listener's name, port and trust_chain_verification", selfSignedConfig, mainConfig)
	}
}

// editTLS edits the listener's DownstreamTlsContext.
func editTLS(t *testing.T, b *bootstrapv3.Bootstrap, edit func(*tlsv3.DownstreamTlsContext)) {
	t.Helper()
	ts := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetTransportSocket()
	tc := &tlsv3.DownstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(tc); err != nil {
		t.Fatal(err)
	}
	edit(tc)
	ts.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, tc)}
}
