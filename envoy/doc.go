// Package envoy holds the Envoy configs certbind ships and checks them offline, with Envoy's own
// protos (go-control-plane), so a broken or unsafe proxy config fails `go test` instead of a
// deployment. certbind trusts what Envoy tells it about the client certificate; this package is
// where that trust is checked.
//
// Configs: envoy.yaml (front proxy of the docker-compose test bed, listener 0.0.0.0:8443, PKI
// clients) and envoy-self-signed.yaml (listener :8444 for self_signed_tls_client_auth clients:
// any certificate is accepted, certbind pins it).
//
// # Load
//
// Load does what Envoy does with a bootstrap at startup, as far as that is possible offline:
// YAML to JSON (merge keys, aliases and !ignore keys as Envoy reads them; enum names in any case,
// as Envoy's case-insensitive enum parsing takes them; a single value where a list belongs read
// as a list of one, as Envoy's JSON parser does), protojson into config.bootstrap.v3.Bootstrap
// (unknown fields, wrong types and misspelt "@type"s of linked packages are errors; an Any of a
// package this binary does not link keeps its type URL and is not read), then the protoc-gen-validate rules on the Bootstrap AND on the message
// inside every google.protobuf.Any, recursively: ValidateAll stops at an Any, and nearly
// everything that matters here (HTTP connection manager, ext_authz, TLS contexts, per-route
// configs) is inside one. TypedStruct-wrapped configs are read as the type they name. Negative
// durations are rejected as Envoy does. Errors are *Error values naming the proto path and YAML
// line, e.g.
//
//	envoy: line 113: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.grpc_service.envoy_grpc.cluster_name: value length must be at least 1 runes
//
// # Lint
//
// Lint checks what certbind needs from the proxy (XFCC, the CheckRequest, the CheckResponse, downstream TLS), for every HTTP connection
// manager that runs ext_authz:
//   - the filter chain terminates TLS with a trusted_ca; require_client_certificate off is a
//     warning (certbind denies requests without a certificate, optional mTLS in front of an
//     authorization server is legitimate); ACCEPT_UNTRUSTED and TLS < 1.2 are noted;
//   - XFCC: forward_client_cert_details FORWARD_ONLY and ALWAYS_FORWARD_ONLY (client-controlled)
//     are errors; SANITIZE (no chain), APPEND_FORWARD against xfcc.elements=single and
//     SANITIZE_SET against xfcc.elements=last are warnings; uri/dns details (envoy#32945
//     injection) warn, and are an error with xfcc.elements=last; chain off warns; JSON format is an
//     error; a forward_client_cert_matcher warns and its actions are checked the same way;
//   - ext_authz: include_peer_certificate on (an error, or a warning when Envoy's XFCC element
//     carries the certificate, nothing when certbind ignores the peer certificate), failure_mode_allow
//     off, transport_api_version V3 or unset (AUTO is V3; V2 is an error),
//     no shadow_mode, no filter_enabled without deny_at_disable, before the router; allowed_headers (or the deprecated http_service.authorization_request.allowed_headers)
//     and disallowed_headers let x-forwarded-client-cert through
//     whenever Envoy writes one; http_service is noted (no context_extensions, no certificate);
//   - the ext_authz gRPC cluster is a static cluster that speaks HTTP/2;
//   - routes: every route that reaches an upstream runs an ext_authz filter (one disabled by
//     default runs where a per-route config enables it, as Envoy Gateway does per policy) or
//     turns ext_authz off on purpose: otherwise a warning, and an error on the catch-all;
//     a catch-all route in every checked virtual host and a "*" virtual host are
//     warnings (with no route Envoy skips ext_authz and answers 404 itself: no upstream is
//     reached), certbind_mode is client_auth, bound_token or identity,
//     client_auth has with_request_body (route or filter), per-route ext_authz configs sit under
//     an ext_authz filter's name (otherwise Envoy ignores them); normalize_path off is noted;
//   - every extension this binary does not link is a warning naming its type.
//
// An error means certbind will be wrong or unsafe with the config; a warning means look at this.
//
// # What cannot be checked offline
//
// Whether files (certificates, keys, CAs) exist and parse; whether clusters other than the authz
// cluster exist (Envoy checks route -> cluster references at startup); anything from xDS (RDS,
// CDS, SDS, ECDS); extensions whose package is not linked in (Lint warns with the type URL; add
// the import to extensions.go to have it read); runtime overrides; and Envoy's own cross-field checks outside the
// protos (Lint does check that ext_authz runs before the router). Passing Load and Lint is
// necessary, not sufficient: `envoy --mode validate` is the final word where Envoy is available.
//
// # Summarize
//
// Summarize turns a config into the few facts an Envoy stand-in needs (listener, XFCC policy,
// ext_authz settings with Envoy's defaults, routes with their merged per-route ext_authz
// settings), so tests drive the simulation from the shipped file itself.
//
// Example:
//
//	b, err := envoy.LoadFile("envoy/envoy.yaml")
//	if err != nil {
//		return err // *envoy.Error: path, line, Envoy's message
//	}
//	for _, f := range envoy.Lint(b, envoy.LintOptions{XFCCElements: "single"}) {
//		fmt.Println(f) // error: static_resources...: include_peer_certificate is off: ...
//	}
//	s, err := envoy.Summarize(b)
//	// s.Routes[1]: {Prefix: "/oauth2/token", Cluster: "as", ContextExtensions: {certbind_mode: client_auth}, WithRequestBody: true, ...}
package envoy
