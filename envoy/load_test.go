package envoy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

const (
	mainConfig       = "envoy.yaml"
	selfSignedConfig = "envoy-self-signed.yaml"
	hcmPath          = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
	authzPath        = hcmPath + ".http_filters[0].typed_config"
	tlsPath          = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config"
	routesPath       = hcmPath + ".route_config.virtual_hosts[0].routes"
	perRouteKey      = `.typed_per_filter_config["envoy.filters.http.ext_authz"]`
)

func readConfig(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// replace replaces old, which must occur exactly once, and returns the edited text and the
// 1-based line of the first character the edit changes.
func replace(t testing.TB, s, old, new string) (string, int) {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times, want 1", old, n)
	}
	i := strings.Index(s, old)
	same := 0
	for same < len(old) && same < len(new) && old[same] == new[same] {
		same++
	}
	return s[:i] + new + s[i+len(old):], strings.Count(s[:i+same], "\n") + 1
}

// errorList unwraps Load's joined error into its *Error values.
func errorList(t *testing.T, err error) []*Error {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*Error
	for _, e := range errs {
		var le *Error
		if !errors.As(e, &le) {
			t.Fatalf("error %v is not an *Error", e)
		}
		out = append(out, le)
	}
	return out
}

func TestLoadShippedConfigs(t *testing.T) {
	for _, name := range []string{mainConfig, selfSignedConfig} {
		t.Run(name, func(t *testing.T) {
			b, err := LoadFile(name)
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if got := len(b.GetStaticResources().GetClusters()); got != 3 {
				t.Errorf("%d clusters, want 3", got)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	base := readConfig(t, mainConfig)
	longSNI := strings.Repeat("a", 256)
	tests := []struct {
		name     string
		old, new string
		kind     error
		path     string
		msg      string // substring of Error.Msg
		// inAny: the violation is inside a google.protobuf.Any, so the Bootstrap's own
		// ValidateAll misses it and only the recursive validation finds it.
		inAny bool
	}{
		{
			name: "unknown field in a listener",
			old:  "  - name: mtls\n", new: "  - name: mtls\n    listner_filters: []\n",
			kind: ErrDecode, path: "static_resources.listeners[0].listner_filters", msg: `unknown field "listner_filters"`,
		},
		{
			name: "unknown field in the HCM typed_config",
			old:  "stat_prefix: ingress", new: "stat_prefx: ingress",
			kind: ErrDecode, path: hcmPath + ".stat_prefx", msg: `unknown field "stat_prefx"`,
		},
		{
			name: "unknown field in a per-route config",
			old:  "# Liveness probe: no client certificate decision needed.\n                    disabled: true",
			new:  "# Liveness probe: no client certificate decision needed.\n                    disable: true",
			kind: ErrDecode, path: routesPath + "[0]" + perRouteKey + ".disable", msg: `unknown field "disable"`,
		},
		{
			name: "string for a number",
			old:  "port_value: 8443", new: "port_value: abc",
			kind: ErrDecode, path: "static_resources.listeners[0].address.socket_address.port_value", msg: `invalid value for uint32 field`,
		},
		{
			name: "string for a bool in ext_authz",
			old:  "include_peer_certificate: true", new: `include_peer_certificate: "yes"`,
			kind: ErrDecode, path: authzPath + ".include_peer_certificate", msg: `invalid value for bool field`,
		},
		{
			name: "unregistered @type",
			old:  "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", new: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr",
			kind: ErrDecode, path: hcmPath + ".http_filters[1].typed_config.@type", msg: `unable to resolve "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr"`,
		},
		{
			name: "unknown enum name",
			old:  "forward_client_cert_details: SANITIZE_SET", new: "forward_client_cert_details: SANITISE_SET",
			kind: ErrDecode, path: hcmPath + ".forward_client_cert_details", msg: `invalid value for enum field`,
		},
		{
			name: "cluster without a name",
			old:  "  - name: api\n", new: "  - name: \"\"\n",
			kind: ErrInvalid, path: "static_resources.clusters[1].name", msg: "value length must be at least 1 runes",
		},
		{
			name: "HCM without stat_prefix",
			old:  "stat_prefix: ingress", new: `stat_prefix: ""`,
			kind: ErrInvalid, path: hcmPath + ".stat_prefix", msg: "value length must be at least 1 runes", inAny: true,
		},
		{
			name: "ext_authz without a cluster name (Any in Any)",
			old:  "envoy_grpc: { cluster_name: certbind }", new: `envoy_grpc: { cluster_name: "" }`,
			kind: ErrInvalid, path: authzPath + ".grpc_service.envoy_grpc.cluster_name", msg: "value length must be at least 1 runes", inAny: true,
		},
		{
			name: "ext_authz status_on_error not an HTTP status",
			old:  "status_on_error: { code: 503 }", new: "status_on_error: { code: 99 }",
			kind: ErrInvalid, path: authzPath + ".status_on_error.code", msg: "value must be one of the defined enum values", inAny: true,
		},
		{
			name: "per-route body limit of zero (Any in a map in Any)",
			old:  "max_request_bytes: 8192", new: "max_request_bytes: 0",
			kind: ErrInvalid, path: routesPath + "[1]" + perRouteKey + ".check_settings.with_request_body.max_request_bytes", msg: "value must be greater than 0", inAny: true,
		},
		{
			name: "downstream TLS version out of range",
			old:  "tls_minimum_protocol_version: TLSv1_2", new: "tls_minimum_protocol_version: 99",
			kind: ErrInvalid, path: tlsPath + ".common_tls_context.tls_params.tls_minimum_protocol_version", msg: "value must be one of the defined enum values", inAny: true,
		},
		{
			name: "upstream SNI too long",
			old:  "sni: certbind", new: "sni: " + longSNI,
			kind: ErrInvalid, path: "static_resources.clusters[0].transport_socket.typed_config.sni", msg: "value length must be at most 255 bytes", inAny: true,
		},
		{
			name: "HTTP/2 options out of range (Any in typed_extension_protocol_options)",
			old:  "http2_protocol_options: {}", new: "http2_protocol_options: { max_concurrent_streams: 0 }",
			kind: ErrInvalid, path: `static_resources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http2_protocol_options.max_concurrent_streams`,
			msg: "value must be inside range [1, 2147483647]", inAny: true,
		},
		{
			name: "negative ext_authz timeout",
			old:  "timeout: 0.5s", new: "timeout: -0.5s",
			kind: ErrInvalid, path: authzPath + ".grpc_service.timeout", msg: "negative duration -500ms: Envoy rejects it at load", inAny: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, line := replace(t, base, tt.old, tt.new)
			b, err := Load([]byte(cfg))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if b != nil {
				t.Error("Load returned a bootstrap with its error")
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v is not %v", err, tt.kind)
			}
			errs := errorList(t, err)
			if len(errs) != 1 {
				t.Fatalf("%d errors, want 1: %v", len(errs), err)
			}
			e := errs[0]
			if e.Path != tt.path {
				t.Errorf("path\n got %s\nwant %s", e.Path, tt.path)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tt.msg)
			}
			if e.Line != line {
				t.Errorf("line %d, want %d", e.Line, line)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error text %q does not name the path", err)
			}
			if tt.kind != ErrInvalid {
				return
			}
			// Without the recursive Any validation the config would pass exactly when the
			// violation sits inside an Any.
			dec, _, derr := decode([]byte(cfg))
			if derr != nil {
				t.Fatalf("decode: %v", derr)
			}
			if top := dec.ValidateAll(); (top == nil) != tt.inAny {
				t.Errorf("Bootstrap.ValidateAll() = %v; the violation is inside an Any: %v", top, tt.inAny)
			}
		})
	}
}

func TestLoadReportsEveryViolation(t *testing.T) {
	cfg, _ := replace(t, readConfig(t, mainConfig), "stat_prefix: ingress", `stat_prefix: ""`)
	cfg, _ = replace(t, cfg, "envoy_grpc: { cluster_name: certbind }", `envoy_grpc: { cluster_name: "" }`)
	cfg, _ = replace(t, cfg, "  - name: as\n", "  - name: \"\"\n")
	_, err := Load([]byte(cfg))
	var got []string
	for _, e := range errorList(t, err) {
		got = append(got, e.Path)
	}
	want := []string{"static_resources.clusters[2].name", hcmPath + ".stat_prefix", authzPath + ".grpc_service.envoy_grpc.cluster_name"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("paths\n got %q\nwant %q", got, want)
	}
}

func TestLoadDocumentErrors(t *testing.T) {
	tests := []struct {
		name, yaml, msg string
	}{
		{"empty", "", "empty document"},
		{"comment only", "# nothing\n", "empty document"},
		{"two documents", "admin: {}\n---\nadmin: {}\n", "more than one YAML document"},
		{"YAML syntax", "admin:\n  address: [\n", "yaml:"},
		{"non-scalar key", "? [a]\n: b\n", "mapping key is not a scalar"},
		{"alias bomb", aliasBomb(), "document too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.yaml))
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v is not ErrDecode", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func aliasBomb() string {
	var b strings.Builder
	b.WriteString("node:\n  metadata:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("    a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// Envoy's YAML loader resolves anchors, aliases and merge keys and skips keys tagged !ignore; a
// config written with them must load to the same proto as the plain one.
func TestLoadYAMLFeatures(t *testing.T) {
	base := readConfig(t, mainConfig)
	cfg, _ := replace(t, base, "static_resources:\n", `!ignore defaults:
  plain_cluster: &plain_cluster
    type: STRICT_DNS
    connect_timeout: 1s
static_resources:
`)
	cfg, _ = replace(t, cfg, "  - name: api\n    type: STRICT_DNS\n    connect_timeout: 1s\n", "  - <<: *plain_cluster\n    name: api\n")
	cfg, _ = replace(t, cfg, "  - name: as\n    type: STRICT_DNS\n    connect_timeout: 1s\n", "  - <<: *plain_cluster\n    name: as\n    connect_timeout: 1s\n")
	want, err := Load([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load([]byte(cfg))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("anchors, merge keys and !ignore changed the config:\n%v", got.GetStaticResources().GetClusters()[1:])
	}
}

// typedStructAuthz is the shipped ext_authz filter written as an xds.type.v3.TypedStruct.
func typedStructAuthz(clusterName string) string {
	return `          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/xds.type.v3.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              value:
                grpc_service: { envoy_grpc: { cluster_name: "` + clusterName + `" }, timeout: 0.5s }
                transport_api_version: V3
                include_peer_certificate: true
                status_on_error: { code: 503 }
`
}

// withTypedStructAuthz swaps the shipped ext_authz filter for its TypedStruct form.
func withTypedStructAuthz(t *testing.T, clusterName string) string {
	t.Helper()
	base := readConfig(t, mainConfig)
	start := strings.Index(base, "          - name: envoy.filters.http.ext_authz\n")
	end := strings.Index(base, "          - name: envoy.filters.http.router\n")
	if start < 0 || end < start {
		t.Fatal("ext_authz filter not found in " + mainConfig)
	}
	return base[:start] + typedStructAuthz(clusterName) + base[end:]
}

// Envoy reads a TypedStruct as the message its type_url names; so do Load and Lint.
func TestLoadTypedStruct(t *testing.T) {
	b, err := Load([]byte(withTypedStructAuthz(t, "certbind")))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := Lint(b, LintOptions{}); len(got) != 0 {
		t.Errorf("Lint of the TypedStruct form: %v", got)
	}

	cfg := withTypedStructAuthz(t, "")
	_, err = Load([]byte(cfg))
	errs := errorList(t, err)
	if len(errs) != 1 || !errors.Is(err, ErrInvalid) || errs[0].Path != authzPath+".grpc_service.envoy_grpc.cluster_name" {
		t.Fatalf("Load: %v", err)
	}
	dec, _, err := decode([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.ValidateAll(); err != nil {
		t.Errorf("Bootstrap.ValidateAll() = %v, want nil: the violation is inside an Any", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile("does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v is not os.ErrNotExist", err)
	}
}

func TestGoCamelCase(t *testing.T) {
	for in, want := range map[string]string{
		"filter_chains":                  "FilterChains",
		"http2_protocol_options":         "Http2ProtocolOptions",
		"tls_minimum_protocol_version":   "TlsMinimumProtocolVersion",
		"x_forwarded_client_cert_config": "XForwardedClientCertConfig",
		"_leading":                       "XLeading",
		"ipv4_compat":                    "Ipv4Compat",
	} {
		if got := goCamelCase(in); got != want {
			t.Errorf("goCamelCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, name := range []string{mainConfig, selfSignedConfig} {
		f.Add([]byte(readConfig(f, name)))
	}
	f.Add([]byte("admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}"))
	// The corpus: lower-case enums, single values for lists, unlinked extensions.
	corpus, _ := filepath.Glob("testdata/corpus/*.yaml")
	for _, c := range corpus {
		if data, err := os.ReadFile(c); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Load(data)
		if err != nil {
			if b != nil {
				t.Fatal("bootstrap returned with an error")
			}
			if !errors.Is(err, ErrDecode) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is neither ErrDecode nor ErrInvalid", err)
			}
			return
		}
		for _, f := range Lint(b, LintOptions{}) {
			if f.Severity != SeverityError && f.Severity != SeverityWarning || f.Path == "" || f.Message == "" {
				t.Fatalf("malformed finding %+v", f)
			}
		}
		_, _ = Summarize(b)
	})
}
