package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// corpusFinding is one finding a corpus file must give: its severity, the end of its path and
// a part of its message.
type corpusFinding struct {
	severity Severity
	path     string
	message  string
}

const corpusHCM = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"

// TestLintCorpus loads and lints bootstraps that use what real configs use and Envoy accepts
// (testdata/corpus/README.md): each loads, and gives exactly its findings.
func TestLintCorpus(t *testing.T) {
	unknown := "is not known to certbind's linter"
	want := map[string][]corpusFinding{
		"auto-api-version.yaml": nil,
		"lowercase-enums.yaml": {
			{SeverityError, corpusHCM + ".http_filters[0].typed_config.transport_api_version", "transport_api_version is V2"},
		},
		"single-values.yaml": nil,
		"extensions.yaml": {
			{SeverityWarning, corpusHCM + ".route_config.virtual_hosts[0].routes", "no catch-all route"},
			{SeverityWarning, corpusHCM + ".route_config.virtual_hosts[0].routes[0].route.inline_cluster_specifier_plugin.extension.typed_config", "envoy.extensions.router.cluster_specifiers.lua.v3.LuaConfig " + unknown},
			{SeverityWarning, corpusHCM + ".http_filters[0].typed_config", "envoy.extensions.filters.http.golang.v3alpha.Config " + unknown},
			{SeverityWarning, corpusHCM + ".http_filters[1].typed_config", "envoy.extensions.filters.http.wasm.v3.Wasm " + unknown},
			{SeverityWarning, "static_resources.listeners[1].filter_chains[0].filters[0].typed_config", "envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker " + unknown},
			{SeverityWarning, "static_resources.listeners[2].listener_filters[0].typed_config", "envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig " + unknown},
		},
		"sds-optional-mtls.yaml": {
			{SeverityWarning, "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.require_client_certificate", "which denies them (no_certificate)"},
			{SeverityWarning, "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.combined_validation_context", "partly from SDS"},
			{SeverityWarning, corpusHCM + ".route_config.virtual_hosts[0].routes", "no catch-all route"},
		},
		"gateway-per-route-filters.yaml": {
			{SeverityWarning, "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context", "from SDS"},
			{SeverityWarning, corpusHCM + ".route_config.virtual_hosts[0].routes[1]", "no ext_authz filter runs on this route"},
		},
		"http-service-allowed-headers.yaml": {
			{SeverityWarning, corpusHCM + ".http_filters[0].typed_config.http_service", "prefer grpc_service"},
			{SeverityWarning, corpusHCM + ".route_config.virtual_hosts[0].routes[0]", "no certbind_mode"},
		},
	}
	// Behind Envoy Gateway certbind ignores the peer certificate it cannot get.
	opts := map[string]LintOptions{"gateway-per-route-filters.yaml": {PeerSource: "ignore"}}
	files, err := filepath.Glob("testdata/corpus/*.yaml")
	if err != nil || len(files) != len(want) {
		t.Fatalf("corpus files %v (%v), want the %d of the table", files, err, len(want))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			exp, ok := want[name]
			if !ok {
				t.Fatal("not in the table")
			}
			b, err := LoadFile(f)
			if err != nil {
				t.Fatalf("Envoy loads this file; Load: %v", err)
			}
			got := Lint(b, opts[name])
			for _, w := range exp {
				found := false
				for _, g := range got {
					found = found || g.Severity == w.severity && g.Path == w.path && strings.Contains(g.Message, w.message)
				}
				if !found {
					t.Errorf("missing %s at %s: %q", w.severity, w.path, w.message)
				}
			}
			if len(got) != len(exp) {
				t.Errorf("%d findings, want %d:\n%s", len(got), len(exp), findingLines(got))
			}
		})
	}
}

func findingLines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestLoadReadsAsEnvoyDoes: what Envoy's loader takes and protojson alone does not comes out as
// Envoy reads it: enum names in any case, a single value as a list of one, an unlinked extension
// kept under its own type URL.
func TestLoadReadsAsEnvoyDoes(t *testing.T) {
	lower, err := LoadFile("testdata/corpus/lowercase-enums.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := sites(lower)
	if len(ss) != 1 || ss[0].hcm.GetForwardClientCertDetails() != hcmv3.HttpConnectionManager_SANITIZE_SET ||
		ss[0].hcm.GetCodecType() != hcmv3.HttpConnectionManager_AUTO ||
		ss[0].tls.GetCommonTlsContext().GetTlsParams().GetTlsMinimumProtocolVersion() != tlsv3.TlsParameters_TLSv1_2 ||
		ss[0].authz[0].cfg.GetTransportApiVersion() != corev3.ApiVersion_V2 {
		t.Errorf("lower-case enums read as %v", ss)
	}

	single, err := LoadFile("testdata/corpus/single-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss, _ = sites(single)
	vh := ss[0].hcm.GetRouteConfig().GetVirtualHosts()
	certs := ss[0].tls.GetCommonTlsContext().GetTlsCertificates()
	if len(vh) != 1 || len(vh[0].GetDomains()) != 1 || vh[0].GetDomains()[0] != "*" || len(vh[0].GetRoutes()) != 1 ||
		len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != "/certs/server.pem" ||
		len(single.GetStaticResources().GetListeners()[0].GetFilterChains()) != 1 {
		t.Errorf("single values read as %v, %v", vh, certs)
	}

	ext, err := LoadFile("testdata/corpus/extensions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss, _ = sites(ext)
	if url := ss[0].hcm.GetHttpFilters()[0].GetTypedConfig().GetTypeUrl(); url != "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config" {
		t.Errorf("the Golang filter's type URL is %q", url)
	}
	if len(ss[0].authz) != 1 || ss[0].authz[0].index != 3 {
		t.Errorf("ext_authz not found after the unknown filters: %+v", ss[0].authz)
	}
}

// TestLoadRefusesWhatEnvoyRefuses: leniency stops where Envoy's does. A type of a package
// certbind links that does not exist is a typo (Envoy: no registered implementation), an enum
// name that matches no value in any case is an error, and so is a mapping where a scalar list
// element belongs.
func TestLoadRefusesWhatEnvoyRefuses(t *testing.T) {
	base, err := os.ReadFile("testdata/corpus/auto-api-version.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, msg string }{
		{"typo in a linked package", "router.v3.Router", "router.v3.Routr", `unable to resolve "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr"`},
		{"typo in a linked package inside a TypedStruct", "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
			"\"@type\": type.googleapis.com/xds.type.v3.TypedStruct\n              type_url: type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr", "not linked into certbind"},
		{"enum name of no value", "forward_client_cert_details: SANITIZE_SET", "forward_client_cert_details: sanitise_set", "invalid value for enum"},
		{"mapping in a list of strings", `domains: ["*"]`, `domains: { host: "*" }`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(string(base), tc.old, tc.new, 1)
			if cfg == string(base) {
				t.Fatalf("%q not in the file", tc.old)
			}
			_, err := Load([]byte(cfg))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.msg)
			}
		})
	}
}
