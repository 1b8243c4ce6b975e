package envoy

import (
	"sort"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const (
	vhostPath   = hcmPath + ".route_config.virtual_hosts[0]"
	clusterPath = "static_resources.clusters[0]"
	tlsCtxPath  = tlsPath + ".common_tls_context"
	modePath    = `.check_settings.context_extensions["certbind_mode"]`
)

func mustLoad(t *testing.T, yaml string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := Load([]byte(yaml))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return b
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// editHCM edits the shipped HTTP connection manager in place.
func editHCM(t *testing.T, b *bootstrapv3.Bootstrap, edit func(*hcmv3.HttpConnectionManager)) {
	t.Helper()
	f := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	h := &hcmv3.HttpConnectionManager{}
	if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}
}

// editAuthz edits the shipped ext_authz filter in place.
func editAuthz(t *testing.T, b *bootstrapv3.Bootstrap, edit func(*extauthzv3.ExtAuthz)) {
	t.Helper()
	editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
		hf := h.GetHttpFilters()[0]
		a := &extauthzv3.ExtAuthz{}
		if err := hf.GetTypedConfig().UnmarshalTo(a); err != nil {
			t.Fatal(err)
		}
		edit(a)
		hf.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, a)}
	})
}

func sortFindings(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	sort.Strings(out)
	return out
}

func TestLintShippedConfigs(t *testing.T) {
	untrusted := warnf(tlsCtxPath+".validation_context.trust_chain_verification",
		"ACCEPT_UNTRUSTED: any certificate is accepted; only self_signed_tls_client_auth clients, whose certificate certbind pins, may use this listener")
	lastWarning := warnf(hcmPath+".forward_client_cert_details",
		"SANITIZE_SET sends exactly one element: xfcc.elements=last also accepts extra elements, which only an injection can produce; use xfcc.elements=single")
	tests := []struct {
		file string
		opt  LintOptions
		want []Finding
	}{
		{mainConfig, LintOptions{}, nil},
		{mainConfig, LintOptions{XFCCElements: "single"}, nil},
		{mainConfig, LintOptions{XFCCElements: "last"}, []Finding{lastWarning}},
		{mainConfig, LintOptions{DPoP: true}, nil}, // every header reaches certbind, DPoP included
		{selfSignedConfig, LintOptions{}, []Finding{untrusted}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.opt.XFCCElements, func(t *testing.T) {
			b, err := LoadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, want := sortFindings(Lint(b, tt.opt)), sortFindings(tt.want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("findings\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestLintRules breaks the shipped config one way per row and expects exactly the findings listed
// (the shipped envoy.yaml itself has none).
func TestLintRules(t *testing.T) {
	type edit struct{ old, new string }
	tests := []struct {
		name   string
		file   string // default envoy.yaml
		edits  []edit
		mutate func(*testing.T, *bootstrapv3.Bootstrap)
		opt    LintOptions
		want   []Finding
	}{
		// XFCC handling.
		{
			name:  "FORWARD_ONLY",
			edits: []edit{{"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: FORWARD_ONLY"}},
			want: []Finding{errorf(hcmPath+".forward_client_cert_details",
				"FORWARD_ONLY passes the client's own x-forwarded-client-cert to certbind: the client controls it; use SANITIZE_SET")},
		},
		{
			name:  "ALWAYS_FORWARD_ONLY",
			edits: []edit{{"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: ALWAYS_FORWARD_ONLY"}},
			want: []Finding{errorf(hcmPath+".forward_client_cert_details",
				"ALWAYS_FORWARD_ONLY passes the client's own x-forwarded-client-cert to certbind, even without mTLS: the client controls it; use SANITIZE_SET")},
		},
		{
			name:  "APPEND_FORWARD with xfcc.elements single",
			edits: []edit{{"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: APPEND_FORWARD"}},
			want: []Finding{warnf(hcmPath+".forward_client_cert_details",
				"APPEND_FORWARD puts Envoy's element after any client-sent ones, and certbind with xfcc.elements=single rejects more than one: use SANITIZE_SET, or xfcc.elements=last")},
		},
		{
			name:  "APPEND_FORWARD with xfcc.elements last is fine",
			edits: []edit{{"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: APPEND_FORWARD"}},
			opt:   LintOptions{XFCCElements: "last"},
		},
		{
			name:  "SANITIZE",
			edits: []edit{{"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: SANITIZE"}},
			want: []Finding{warnf(hcmPath+".forward_client_cert_details",
				"SANITIZE removes x-forwarded-client-cert: certbind sees only the leaf from include_peer_certificate, no chain, so clients of an intermediate CA cannot be verified; use SANITIZE_SET")},
		},
		{
			name:  "uri details",
			edits: []edit{{"{ subject: true, cert: true, chain: true }", "{ subject: true, cert: true, chain: true, uri: true }"}},
			want: []Finding{warnf(hcmPath+".set_current_client_cert_details.uri",
				"uri: Envoy does not escape URI SANs, so a client certificate can inject XFCC pairs (envoy#32945); certbind reads SANs from the certificate, turn this off")},
		},
		{
			name:  "dns details",
			edits: []edit{{"{ subject: true, cert: true, chain: true }", "{ subject: true, cert: true, chain: true, dns: true }"}},
			want: []Finding{warnf(hcmPath+".set_current_client_cert_details.dns",
				"dns: Envoy does not escape DNS SANs, so a client certificate can inject XFCC pairs (envoy#32945); certbind reads SANs from the certificate, turn this off")},
		},
		{
			name:  "uri details with xfcc.elements last",
			edits: []edit{{"{ subject: true, cert: true, chain: true }", "{ subject: true, cert: true, chain: true, uri: true }"}},
			opt:   LintOptions{XFCCElements: "last"},
			want: []Finding{
				warnf(hcmPath+".forward_client_cert_details",
					"SANITIZE_SET sends exactly one element: xfcc.elements=last also accepts extra elements, which only an injection can produce; use xfcc.elements=single"),
				warnf(hcmPath+".set_current_client_cert_details.uri",
					"uri: Envoy does not escape URI SANs, so a client certificate can inject XFCC pairs (envoy#32945); certbind reads SANs from the certificate, turn this off"),
				errorf(hcmPath+".set_current_client_cert_details",
					"xfcc.elements=last with uri or dns: a SAN containing ',' appends a forged element after Envoy's, and certbind would take it (envoy#32945)"),
			},
		},
		{
			name:  "no chain",
			edits: []edit{{"{ subject: true, cert: true, chain: true }", "{ subject: true, cert: true }"}},
			want: []Finding{warnf(hcmPath+".set_current_client_cert_details.chain",
				"chain is off: certbind gets no intermediates and cannot verify clients whose certificate chains through one")},
		},
		{
			name:  "no cert",
			edits: []edit{{"{ subject: true, cert: true, chain: true }", "{ subject: true, chain: true }"}},
			want: []Finding{warnf(hcmPath+".set_current_client_cert_details.cert",
				"cert is off: certbind gets the leaf only from include_peer_certificate, and a proxy behind this one gets no certificate at all")},
		},
		{
			name:  "JSON XFCC format",
			edits: []edit{{"{ subject: true, cert: true, chain: true }", "{ subject: true, cert: true, chain: true, format: JSON }"}},
			want:  []Finding{errorf(hcmPath+".set_current_client_cert_details.format", "format JSON: certbind parses Envoy's text XFCC format")},
		},
		{
			name: "forward_client_cert_matcher with a FORWARD_ONLY action",
			edits: []edit{{"forward_client_cert_details: SANITIZE_SET\n", `forward_client_cert_details: SANITIZE_SET
          forward_client_cert_matcher:
            on_no_match:
              action:
                name: forward_client_cert
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.ForwardClientCertConfig
                  forward_client_cert_details: FORWARD_ONLY
`}},
			want: []Finding{
				warnf(hcmPath+".forward_client_cert_matcher",
					"forward_client_cert_matcher picks the XFCC handling per request, possibly from client-sent headers; certbind needs one fixed policy (SANITIZE_SET)"),
				errorf(hcmPath+".forward_client_cert_matcher.on_no_match.action.typed_config.forward_client_cert_details",
					"FORWARD_ONLY passes the client's own x-forwarded-client-cert to certbind: the client controls it; use SANITIZE_SET"),
			},
		},
		{
			name:  "normalize_path off",
			edits: []edit{{"normalize_path: true", "normalize_path: false"}},
			want: []Finding{warnf(hcmPath+".normalize_path",
				"normalize_path is off: routes, and so certbind_mode, are chosen on the raw path (/api/../internal/x matches /api/)")},
		},
		{
			name: "unknown xfcc.elements",
			opt:  LintOptions{XFCCElements: "first"},
			want: []Finding{errorf("LintOptions.XFCCElements", `unknown xfcc.elements "first" (want single or last)`)},
		},

		// The ext_authz filter.
		{
			// Envoy's own XFCC element still carries the certificate (cert: true).
			name:  "include_peer_certificate off",
			edits: []edit{{"include_peer_certificate: true", "include_peer_certificate: false"}},
			want: []Finding{warnf(authzPath+".include_peer_certificate",
				"include_peer_certificate is off: certbind reads the certificate from Envoy's XFCC element only; turn it on, or set certificate_sources.peer: ignore to say so")},
		},
		{
			name:  "include_peer_certificate off without the certificate in XFCC",
			edits: []edit{{"include_peer_certificate: true", "include_peer_certificate: false"}, {"subject: true, cert: true, chain: true", "subject: true, chain: true"}},
			want: []Finding{
				errorf(authzPath+".include_peer_certificate", "include_peer_certificate is off: certbind gets no source.certificate, the one certificate input no client can forge"),
				warnf(hcmPath+".set_current_client_cert_details.cert", "cert is off: certbind gets the leaf only from include_peer_certificate, and a proxy behind this one gets no certificate at all"),
			},
		},
		{
			name:  "include_peer_certificate off, certbind requires the peer certificate",
			edits: []edit{{"include_peer_certificate: true", "include_peer_certificate: false"}},
			opt:   LintOptions{PeerSource: "require"},
			want: []Finding{errorf(authzPath+".include_peer_certificate",
				"include_peer_certificate is off and certbind's certificate_sources.peer is require: certbind denies every request (no_certificate)")},
		},
		{
			// Envoy Gateway: no peer certificate, XFCC only, and certbind told so.
			name:  "include_peer_certificate off, certbind ignores the peer certificate",
			edits: []edit{{"include_peer_certificate: true", "include_peer_certificate: false"}},
			opt:   LintOptions{PeerSource: "ignore"},
		},
		{
			name: "unknown certificate_sources.peer",
			opt:  LintOptions{PeerSource: "sometimes"},
			want: []Finding{errorf("LintOptions.PeerSource", `unknown certificate_sources.peer "sometimes" (want accept, require or ignore)`)},
		},
		{
			name:  "failure_mode_allow",
			edits: []edit{{"failure_mode_allow: false", "failure_mode_allow: true"}},
			want:  []Finding{errorf(authzPath+".failure_mode_allow", "failure_mode_allow lets requests through unchecked when certbind fails or times out")},
		},
		{
			// AUTO, which Envoy reads as V3, the only version it still supports.
			name:  "transport_api_version unset",
			edits: []edit{{"transport_api_version: V3\n", ""}},
		},
		{
			name:  "transport_api_version V2",
			edits: []edit{{"transport_api_version: V3\n", "transport_api_version: V2\n"}},
			want: []Finding{errorf(authzPath+".transport_api_version",
				"transport_api_version is V2: certbind serves envoy.service.auth.v3, set V3 or leave it unset")},
		},
		{
			name: "http_service without allowed_headers",
			edits: []edit{{"grpc_service:\n                envoy_grpc: { cluster_name: certbind }\n                # Per-check deadline (Envoy's default is 200ms).\n                timeout: 0.5s\n",
				"http_service:\n                server_uri: { uri: \"https://certbind:9191\", cluster: certbind, timeout: 0.5s }\n"}},
			want: []Finding{
				warnf(authzPath+".http_service",
					"http_service: over HTTP Envoy sends certbind neither context_extensions (certbind_mode) nor source.certificate; prefer grpc_service"),
				errorf(authzPath+".allowed_headers",
					"http_service sends x-forwarded-client-cert only if allowed_headers lists it: certbind gets no chain"),
			},
		},
		{
			name:  "allowed_headers without XFCC",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              allowed_headers: { patterns: [{ exact: authorization }, { prefix: x-forwarded-for }] }\n"}},
			want:  []Finding{errorf(authzPath+".allowed_headers", "allowed_headers does not include x-forwarded-client-cert: certbind gets no chain")},
		},
		{
			name:  "allowed_headers with XFCC by regex",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              allowed_headers: { patterns: [{ exact: authorization }, { safe_regex: { regex: \"x-forwarded-.*\" } }] }\n"}},
		},
		{
			name: "allowed_headers without XFCC when XFCC is removed anyway",
			edits: []edit{
				{"include_peer_certificate: true\n", "include_peer_certificate: true\n              allowed_headers: { patterns: [{ exact: authorization }] }\n"},
				{"forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: SANITIZE"},
			},
			want: []Finding{warnf(hcmPath+".forward_client_cert_details",
				"SANITIZE removes x-forwarded-client-cert: certbind sees only the leaf from include_peer_certificate, no chain, so clients of an intermediate CA cannot be verified; use SANITIZE_SET")},
		},
		{
			name:  "disallowed_headers with XFCC",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              disallowed_headers: { patterns: [{ exact: X-Forwarded-Client-Cert }] }\n"}},
			want:  []Finding{errorf(authzPath+".disallowed_headers", "disallowed_headers removes x-forwarded-client-cert: certbind gets no chain")},
		},
		// DPoP proofs must reach certbind when its configuration accepts DPoP-bound tokens.
		{
			name:  "DPoP: allowed_headers without dpop",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              allowed_headers: { patterns: [{ exact: authorization }, { exact: x-forwarded-client-cert }] }\n"}},
			opt:   LintOptions{DPoP: true},
			want: []Finding{errorf(authzPath+".allowed_headers",
				"allowed_headers does not include dpop: DPoP proofs never reach certbind, which refuses every DPoP-bound token (dpop_proof_missing)")},
		},
		{
			name:  "DPoP: allowed_headers with dpop",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              allowed_headers: { patterns: [{ exact: authorization }, { exact: DPoP }, { exact: x-forwarded-client-cert }] }\n"}},
			opt:   LintOptions{DPoP: true},
		},
		{
			name:  "no DPoP: allowed_headers without dpop",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              allowed_headers: { patterns: [{ exact: authorization }, { exact: x-forwarded-client-cert }] }\n"}},
		},
		{
			name:  "DPoP: disallowed_headers with dpop",
			edits: []edit{{"include_peer_certificate: true\n", "include_peer_certificate: true\n              disallowed_headers: { patterns: [{ prefix: dp }] }\n"}},
			opt:   LintOptions{DPoP: true},
			want: []Finding{errorf(authzPath+".disallowed_headers",
				"disallowed_headers removes dpop: DPoP proofs never reach certbind, which refuses every DPoP-bound token (dpop_proof_missing)")},
		},
		{
			name:  "shadow_mode",
			edits: []edit{{"failure_mode_allow: false", "failure_mode_allow: false\n              shadow_mode: true"}},
			want:  []Finding{errorf(authzPath+".shadow_mode", "shadow_mode: certbind's denials are not enforced")},
		},
		{
			name:  "filter_enabled without deny_at_disable",
			edits: []edit{{"failure_mode_allow: false", "failure_mode_allow: false\n              filter_enabled: { default_value: { numerator: 100 }, runtime_key: certbind.enabled }"}},
			want: []Finding{errorf(authzPath+".filter_enabled",
				"filter_enabled or filter_enabled_metadata skips the check for some requests; set deny_at_disable to deny them instead")},
		},
		{
			name: "filter_enabled with deny_at_disable is fine",
			edits: []edit{{"failure_mode_allow: false", "failure_mode_allow: false\n              filter_enabled: { default_value: { numerator: 100 }, runtime_key: certbind.enabled }\n" +
				"              deny_at_disable: { default_value: true, runtime_key: certbind.deny }"}},
		},
		{
			// Every shipped route has a per-route config for the filter, which enables it there.
			name: "ext_authz disabled by default, enabled on every route",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters[0].Disabled = true })
			},
		},
		{
			name: "ext_authz disabled by default, not enabled on the catch-all",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0].Disabled = true
					h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[5].TypedPerFilterConfig = nil
				})
			},
			want: []Finding{errorf(vhostPath+".routes[5]", "no ext_authz filter runs on the catch-all route: every request no other route takes reaches the upstream without certbind")},
		},
		{
			name: "ext_authz disabled by default, not enabled on one route",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0].Disabled = true
					h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[3].TypedPerFilterConfig = nil
				})
			},
			want: []Finding{warnf(vhostPath+".routes[3]", "no ext_authz filter runs on this route: its requests reach the upstream without certbind; if it is public on purpose, say so with a per-route config that disables ext_authz")},
		},
		{
			name: "ext_authz after the router",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0], h.HttpFilters[1] = h.HttpFilters[1], h.HttpFilters[0]
				})
			},
			want: []Finding{errorf(hcmPath+".http_filters[1].typed_config", "ext_authz comes after the router: it never runs")},
		},
		{
			name: "no ext_authz filter",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = h.HttpFilters[1:] })
			},
			want: []Finding{errorf("static_resources.listeners", "no HTTP connection manager runs an ext_authz filter: certbind is never asked")},
		},

		// The authz cluster.
		{
			name:  "authz cluster missing",
			edits: []edit{{"envoy_grpc: { cluster_name: certbind }", "envoy_grpc: { cluster_name: authz }"}},
			want:  []Finding{errorf(authzPath+".grpc_service.envoy_grpc.cluster_name", `cluster "authz" is not among static_resources.clusters`)},
		},
		{
			name: "authz cluster without HTTP/2",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				b.GetStaticResources().GetClusters()[0].TypedExtensionProtocolOptions = nil
			},
			want: []Finding{errorf(clusterPath, `cluster "certbind" does not speak HTTP/2 (no http2_protocol_options): gRPC to certbind fails and every check errors`)},
		},
		{
			name:  "authz cluster with HTTP/1.1 explicitly",
			edits: []edit{{"explicit_http_config: { http2_protocol_options: {} }", "explicit_http_config: { http_protocol_options: {} }"}},
			want:  []Finding{errorf(clusterPath, `cluster "certbind" does not speak HTTP/2 (no http2_protocol_options): gRPC to certbind fails and every check errors`)},
		},
		{
			name: "authz cluster with the legacy http2_protocol_options",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				c := b.GetStaticResources().GetClusters()[0]
				c.TypedExtensionProtocolOptions = nil
				//lint:ignore SA1019 the deprecated field Envoy still honours
				c.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{}
			},
		},

		// Downstream TLS.
		{
			name:  "require_client_certificate false",
			edits: []edit{{"require_client_certificate: true", "require_client_certificate: false"}},
			want: []Finding{warnf(tlsPath+".require_client_certificate",
				"require_client_certificate is not true: clients without a certificate reach certbind, which denies them (no_certificate) but cannot stop their TLS handshake")},
		},
		{
			name:  "require_client_certificate absent",
			edits: []edit{{"          require_client_certificate: true\n", ""}},
			want: []Finding{warnf(tlsPath+".require_client_certificate",
				"require_client_certificate is not true: clients without a certificate reach certbind, which denies them (no_certificate) but cannot stop their TLS handshake")},
		},
		{
			name:  "no validation context",
			edits: []edit{{"trusted_ca: { filename: /etc/certbind/pki/ca.pem }\n      filters:", "\n      filters:"}},
			want: []Finding{errorf(tlsCtxPath+".validation_context",
				"no validation_context with trusted_ca: require_client_certificate has no effect, Envoy accepts clients without a certificate")},
		},
		{
			name:  "ACCEPT_UNTRUSTED without trusted_ca",
			file:  selfSignedConfig,
			edits: []edit{{"trusted_ca: { filename: /etc/certbind/pki/ca.pem }\n              # Require", "# Require"}},
			want: []Finding{
				errorf(tlsCtxPath+".validation_context.trusted_ca",
					"no trusted_ca: require_client_certificate has no effect, Envoy accepts clients without a certificate"),
				warnf(tlsCtxPath+".validation_context.trust_chain_verification",
					"ACCEPT_UNTRUSTED: any certificate is accepted; only self_signed_tls_client_auth clients, whose certificate certbind pins, may use this listener"),
			},
		},
		{
			name:  "TLS 1.0 allowed",
			edits: []edit{{"tls_minimum_protocol_version: TLSv1_2", "tls_minimum_protocol_version: TLSv1_0"}},
			want:  []Finding{warnf(tlsCtxPath+".tls_params.tls_minimum_protocol_version", "TLSv1_0 allowed: use TLSv1_2 or later")},
		},
		{
			name: "plaintext listener",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].TransportSocket = nil
			},
			want: []Finding{errorf("static_resources.listeners[0].filter_chains[0].transport_socket",
				"no DownstreamTlsContext on a filter chain that runs ext_authz: there is no client certificate")},
		},

		// Routes.
		{
			name: "no catch-all route",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					vh := h.GetRouteConfig().GetVirtualHosts()[0]
					vh.Routes = vh.Routes[:len(vh.Routes)-1]
				})
			},
			want: []Finding{warnf(vhostPath+".routes", `no catch-all route (prefix "/"): a request that matches no route gets Envoy's own 404 without a check (no upstream is reached, certbind never sees it)`)},
		},
		{
			name: "catch-all by safe_regex",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					r := h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[5]
					r.Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}
				})
			},
		},
		{
			name:  "catch-all prefix with a header condition is no catch-all",
			edits: []edit{{"match: { prefix: / }", "match: { prefix: /, headers: [{ name: x-tenant, present_match: true }] }"}},
			want:  []Finding{warnf(vhostPath+".routes", `no catch-all route (prefix "/"): a request that matches no route gets Envoy's own 404 without a check (no upstream is reached, certbind never sees it)`)},
		},
		{
			name:  "no wildcard virtual host",
			edits: []edit{{`domains: ["*"]`, `domains: ["proxy.certbind.test"]`}},
			want: []Finding{warnf(hcmPath+".route_config.virtual_hosts",
				`no virtual host with domains ["*"]: a request for another host gets Envoy's own 404 without a check (no upstream is reached, certbind never sees it)`)},
		},
		{
			name:  "client_auth without with_request_body",
			edits: []edit{{"                      with_request_body: { max_request_bytes: 8192, allow_partial_message: false }\n", ""}},
			want: []Finding{errorf(routesPath+"[1]"+perRouteKey+modePath,
				"certbind_mode client_auth without with_request_body: certbind cannot read client_id from the token request body")},
		},
		{
			name: "client_auth with the filter's with_request_body",
			edits: []edit{
				{"                      with_request_body: { max_request_bytes: 8192, allow_partial_message: false }\n", ""},
				{"include_peer_certificate: true\n", "include_peer_certificate: true\n              with_request_body: { max_request_bytes: 8192 }\n"},
			},
		},
		{
			name: "client_auth with the filter's with_request_body disabled on the route",
			edits: []edit{
				{"with_request_body: { max_request_bytes: 8192, allow_partial_message: false }", "disable_request_body_buffering: true"},
				{"include_peer_certificate: true\n", "include_peer_certificate: true\n              with_request_body: { max_request_bytes: 8192 }\n"},
			},
			want: []Finding{errorf(routesPath+"[1]"+perRouteKey+modePath,
				"certbind_mode client_auth without with_request_body: certbind cannot read client_id from the token request body")},
		},
		{
			// Envoy takes check_settings whole from the most specific per-route config: the
			// virtual host's body settings do not reach a route with check_settings of its own.
			name: "client_auth with with_request_body on the virtual host only",
			edits: []edit{
				{"                      with_request_body: { max_request_bytes: 8192, allow_partial_message: false }\n", ""},
				{"              domains: [\"*\"]\n", "              domains: [\"*\"]\n              typed_per_filter_config:\n                envoy.filters.http.ext_authz:\n                  \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                  check_settings: { with_request_body: { max_request_bytes: 8192 } }\n"},
			},
			want: []Finding{errorf(routesPath+"[1]"+perRouteKey+modePath,
				"certbind_mode client_auth without with_request_body: certbind cannot read client_id from the token request body")},
		},
		{
			name:  "client_auth with allow_partial_message",
			edits: []edit{{"allow_partial_message: false", "allow_partial_message: true"}},
			want: []Finding{warnf(routesPath+"[1]"+perRouteKey+modePath,
				"certbind_mode client_auth with allow_partial_message: a token request over max_request_bytes reaches certbind cut short and is refused (request_malformed) instead of Envoy's 413")},
		},
		{
			name:  "unknown certbind_mode",
			edits: []edit{{"certbind_mode: bound_token", "certbind_mode: bound-token"}},
			want: []Finding{errorf(routesPath+"[3]"+perRouteKey+modePath,
				`unknown certbind_mode "bound-token" (want client_auth, bound_token or identity)`)},
		},
		{
			name: "certbind_mode from the virtual host",
			edits: []edit{
				{"# Catch-all: a request that matches no route skips ext_authz entirely.\n                      context_extensions: { certbind_mode: identity }",
					"# Catch-all: a request that matches no route skips ext_authz entirely.\n                      context_extensions: { tenant: test }"},
				{`domains: ["*"]` + "\n", `domains: ["*"]` + "\n" + `              typed_per_filter_config:
                envoy.filters.http.ext_authz:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                  check_settings: { context_extensions: { certbind_mode: identty } }
`},
			},
			// The virtual host's mode reaches the catch-all route only: the others set their own.
			want: []Finding{errorf(vhostPath+perRouteKey+modePath,
				`unknown certbind_mode "identty" (want client_auth, bound_token or identity)`)},
		},
		{
			name: "route without certbind_mode",
			edits: []edit{{"# Catch-all: a request that matches no route skips ext_authz entirely.\n                      context_extensions: { certbind_mode: identity }",
				"# Catch-all: a request that matches no route skips ext_authz entirely.\n                      context_extensions: { tenant: test }"}},
			want: []Finding{warnf(routesPath+"[5]", "no certbind_mode in context_extensions: certbind falls back to its own routes, else denies (no_policy)")},
		},
		{
			name: "per-route config under the wrong name",
			edits: []edit{{"  envoy.filters.http.ext_authz:\n                    \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                    # Public metadata",
				"  envoy.filters.http.extauthz:\n                    \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                    # Public metadata"}},
			want: []Finding{
				errorf(routesPath+`[2].typed_per_filter_config["envoy.filters.http.extauthz"]`,
					`per-route ext_authz config under "envoy.filters.http.extauthz", but no ext_authz filter has that name: Envoy ignores it`),
				warnf(routesPath+"[2]", "no certbind_mode in context_extensions: certbind falls back to its own routes, else denies (no_policy)"),
			},
		},
		{
			name: "routes from RDS",
			mutate: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "certbind"}}
				})
			},
			want: []Finding{warnf(hcmPath+".rds", "routes come from RDS: catch-all and certbind_mode cannot be checked offline")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = mainConfig
			}
			cfg := readConfig(t, file)
			for _, e := range tt.edits {
				cfg, _ = replace(t, cfg, e.old, e.new)
			}
			b := mustLoad(t, cfg)
			if tt.mutate != nil {
				tt.mutate(t, b)
				if err := validate(b, nil); len(err) > 0 {
					t.Fatalf("mutated config does not validate: %v", err)
				}
			}
			got, want := sortFindings(Lint(b, tt.opt)), sortFindings(tt.want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("findings\n got %q\nwant %q", got, want)
			}
		})
	}
}
