package envoy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Severity of a Finding.
type Severity string

const (
	// SeverityError: certbind will be wrong or unsafe with this config (a check skipped or not
	// enforced, a client-controlled certificate input, no chain for certbind).
	SeverityError Severity = "error"
	// SeverityWarning: look at this: weaker or more fragile than it should be, or a part of
	// the config certbind's linter cannot check (SDS, RDS, an extension it does not link).
	SeverityWarning Severity = "warning"
)

// Finding is one thing Lint reports, at a proto path like the ones in Load's errors.
type Finding struct {
	Severity Severity
	Path     string
	Message  string
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.Severity, f.Path, f.Message) }

// LintOptions tells Lint how certbind is configured.
type LintOptions struct {
	// XFCCElements is certbind's xfcc.elements: "single" (the default when empty) accepts an XFCC
	// header of exactly one element; "last" takes the last element.
	XFCCElements string
	// PeerSource is certbind's certificate_sources.peer: "accept" (the default when empty),
	// "require" or "ignore". Behind Envoy Gateway, which cannot send the peer certificate,
	// certbind ignores it and reads XFCC only.
	PeerSource string
	// DPoP says certbind's configuration accepts DPoP-bound tokens somewhere (a binding of
	// dpop, either, both or optional): then the DPoP header must reach it.
	DPoP bool
}

// certbind's context_extensions key and the modes it serves.
const (
	modeKey        = "certbind_mode"
	modeClientAuth = "client_auth"
	modeBoundToken = "bound_token"
	modeIdentity   = "identity"
)

var knownModes = map[string]bool{modeClientAuth: true, modeBoundToken: true, modeIdentity: true}

const xfccHeader = "x-forwarded-client-cert"

func errorf(path, format string, args ...any) Finding {
	return Finding{Severity: SeverityError, Path: path, Message: fmt.Sprintf(format, args...)}
}

func warnf(path, format string, args ...any) Finding {
	return Finding{Severity: SeverityWarning, Path: path, Message: fmt.Sprintf(format, args...)}
}

// Lint checks a loaded bootstrap for what certbind needs from the Envoy in front of it: every
// listener whose HTTP connection manager runs ext_authz, that manager's XFCC handling and routes,
// the ext_authz filter, and the authz cluster. Findings come in config order.
func Lint(b *bootstrapv3.Bootstrap, opt LintOptions) []Finding {
	l := linter{b: b, peer: opt.PeerSource, dpop: opt.DPoP}
	switch opt.XFCCElements {
	case "", "single":
	case "last":
		l.last = true
	default:
		l.add(errorf("LintOptions.XFCCElements", "unknown xfcc.elements %q (want single or last)", opt.XFCCElements))
	}
	switch opt.PeerSource {
	case "", "accept", "require", "ignore":
	default:
		l.add(errorf("LintOptions.PeerSource", "unknown certificate_sources.peer %q (want accept, require or ignore)", opt.PeerSource))
	}
	ss, bad := sites(b)
	l.out = append(l.out, bad...)
	authz := 0
	for _, s := range ss {
		if len(s.authz) == 0 {
			continue
		}
		authz++
		l.site(s)
	}
	if authz == 0 {
		l.add(errorf("static_resources.listeners", "no HTTP connection manager runs an ext_authz filter: certbind is never asked"))
	}
	l.unknownExtensions(b.ProtoReflect(), "")
	return l.out
}

// unknownExtensions warns about every typed config below m of an extension this binary does not
// link (Lua, Wasm, Golang filters, Kafka or UDP proxies, ...): Envoy loads it, certbind's linter
// cannot read it, and it may change what reaches certbind. The rest is checked as usual.
func (l *linter) unknownExtensions(m protoreflect.Message, path string) {
	walkMessages(m, path, func(m protoreflect.Message, path string) bool {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return true
		}
		inner, err := unpack(a)
		switch url, _ := unlinkedType(err); {
		case err == nil:
			l.unknownExtensions(inner.ProtoReflect(), path)
		case unknownExtension(err):
			l.add(warnf(path, "%s is not known to certbind's linter: its settings are not checked; review it by hand if it runs before ext_authz or changes headers, routes or TLS", url))
		}
		return false
	})
}

type linter struct {
	b    *bootstrapv3.Bootstrap
	last bool   // xfcc.elements=last
	peer string // certificate_sources.peer
	dpop bool   // DPoP proofs must reach certbind
	out  []Finding
}

func (l *linter) add(f Finding) { l.out = append(l.out, f) }

func (l *linter) site(s site) {
	l.downstreamTLS(s)
	mode := s.hcm.GetForwardClientCertDetails()
	l.xfcc(s.path, mode, s.hcm.GetSetCurrentClientCertDetails())
	if m := s.hcm.GetForwardClientCertMatcher(); m != nil {
		mp := s.path + ".forward_client_cert_matcher"
		l.add(warnf(mp, "forward_client_cert_matcher picks the XFCC handling per request, possibly from client-sent headers; certbind needs one fixed policy (SANITIZE_SET)"))
		eachAny(m, mp, func(path string, msg proto.Message) {
			if fc, ok := msg.(*hcmv3.HttpConnectionManager_ForwardClientCertConfig); ok {
				l.xfcc(path, fc.GetForwardClientCertDetails(), fc.GetSetCurrentClientCertDetails())
			}
		})
	}
	if np := s.hcm.GetNormalizePath(); np == nil || !np.GetValue() {
		l.add(warnf(s.path+".normalize_path", "normalize_path is off: routes, and so certbind_mode, are chosen on the raw path (/api/../internal/x matches /api/)"))
	}
	for _, f := range s.authz {
		l.authzFilter(s, f, mode)
	}
	l.routes(s)
}

// downstreamTLS: the listener must require a client certificate and be able to verify one.
func (l *linter) downstreamTLS(s site) {
	if s.tls == nil {
		if _, err := unpackOrNil(s.chain.GetTransportSocket().GetTypedConfig()); unknownExtension(err) {
			return // warned about as an unknown extension: whether it asks for certificates is unknown
		}
		l.add(errorf(s.chainPath+".transport_socket", "no DownstreamTlsContext on a filter chain that runs ext_authz: there is no client certificate"))
		return
	}
	if rc := s.tls.GetRequireClientCertificate(); rc == nil || !rc.GetValue() {
		// Optional mTLS is legitimate (in front of an authorization server, say): certbind
		// denies a request without a certificate in every mode it serves.
		l.add(warnf(s.tlsPath+".require_client_certificate", "require_client_certificate is not true: clients without a certificate reach certbind, which denies them (no_certificate) but cannot stop their TLS handshake"))
	}
	ctx := s.tls.GetCommonTlsContext()
	if min := ctx.GetTlsParams().GetTlsMinimumProtocolVersion(); min == tlsv3.TlsParameters_TLSv1_0 || min == tlsv3.TlsParameters_TLSv1_1 {
		l.add(warnf(s.tlsPath+".common_tls_context.tls_params.tls_minimum_protocol_version", "%s allowed: use TLSv1_2 or later", min))
	}
	vp := s.tlsPath + ".common_tls_context"
	switch ctx.GetValidationContextType().(type) {
	case nil:
		l.add(errorf(vp+".validation_context", "no validation_context with trusted_ca: require_client_certificate has no effect, Envoy accepts clients without a certificate"))
		return
	case *tlsv3.CommonTlsContext_ValidationContext:
		vp += ".validation_context"
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		if ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig() != nil {
			l.add(warnf(vp+".combined_validation_context", "validation context partly from SDS: trusted_ca cannot be checked offline"))
			return
		}
		vp += ".combined_validation_context.default_validation_context"
	default:
		l.add(warnf(vp, "validation context from SDS or a certificate provider: trusted_ca cannot be checked offline"))
		return
	}
	vc := validationContext(ctx)
	if vc.GetCustomValidatorConfig() == nil && !dataSourceSet(vc.GetTrustedCa()) && vc.GetCaCertificateProviderInstance() == nil {
		l.add(errorf(vp+".trusted_ca", "no trusted_ca: require_client_certificate has no effect, Envoy accepts clients without a certificate"))
	}
	if vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED {
		l.add(warnf(vp+".trust_chain_verification", "ACCEPT_UNTRUSTED: any certificate is accepted; only self_signed_tls_client_auth clients, whose certificate certbind pins, may use this listener"))
	}
}

// validationContext is the static validation context of a TLS context, nil if none.
func validationContext(ctx *tlsv3.CommonTlsContext) *tlsv3.CertificateValidationContext {
	if vc := ctx.GetValidationContext(); vc != nil {
		return vc
	}
	return ctx.GetCombinedValidationContext().GetDefaultValidationContext()
}

func dataSourceSet(d *corev3.DataSource) bool {
	return d.GetFilename() != "" || len(d.GetInlineBytes()) > 0 || d.GetInlineString() != "" || d.GetEnvironmentVariable() != ""
}

// xfcc checks forward_client_cert_details and set_current_client_cert_details.
func (l *linter) xfcc(path string, mode hcmv3.HttpConnectionManager_ForwardClientCertDetails, d *hcmv3.HttpConnectionManager_SetCurrentClientCertDetails) {
	mp := path + ".forward_client_cert_details"
	dp := path + ".set_current_client_cert_details"
	switch mode {
	case hcmv3.HttpConnectionManager_FORWARD_ONLY:
		l.add(errorf(mp, "FORWARD_ONLY passes the client's own x-forwarded-client-cert to certbind: the client controls it; use SANITIZE_SET"))
	case hcmv3.HttpConnectionManager_ALWAYS_FORWARD_ONLY:
		l.add(errorf(mp, "ALWAYS_FORWARD_ONLY passes the client's own x-forwarded-client-cert to certbind, even without mTLS: the client controls it; use SANITIZE_SET"))
	case hcmv3.HttpConnectionManager_SANITIZE:
		l.add(warnf(mp, "SANITIZE removes x-forwarded-client-cert: certbind sees only the leaf from include_peer_certificate, no chain, so clients of an intermediate CA cannot be verified; use SANITIZE_SET"))
	case hcmv3.HttpConnectionManager_APPEND_FORWARD:
		if !l.last {
			l.add(warnf(mp, "APPEND_FORWARD puts Envoy's element after any client-sent ones, and certbind with xfcc.elements=single rejects more than one: use SANITIZE_SET, or xfcc.elements=last"))
		}
	case hcmv3.HttpConnectionManager_SANITIZE_SET:
		if l.last {
			l.add(warnf(mp, "SANITIZE_SET sends exactly one element: xfcc.elements=last also accepts extra elements, which only an injection can produce; use xfcc.elements=single"))
		}
	}
	if mode != hcmv3.HttpConnectionManager_SANITIZE_SET && mode != hcmv3.HttpConnectionManager_APPEND_FORWARD {
		return // Envoy writes no element of its own
	}
	if d.GetUri() {
		l.add(warnf(dp+".uri", "uri: Envoy does not escape URI SANs, so a client certificate can inject XFCC pairs (envoy#32945); certbind reads SANs from the certificate, turn this off"))
	}
	if d.GetDns() {
		l.add(warnf(dp+".dns", "dns: Envoy does not escape DNS SANs, so a client certificate can inject XFCC pairs (envoy#32945); certbind reads SANs from the certificate, turn this off"))
	}
	if l.last && (d.GetUri() || d.GetDns()) {
		l.add(errorf(dp, "xfcc.elements=last with uri or dns: a SAN containing ',' appends a forged element after Envoy's, and certbind would take it (envoy#32945)"))
	}
	if !d.GetCert() {
		l.add(warnf(dp+".cert", "cert is off: certbind gets the leaf only from include_peer_certificate, and a proxy behind this one gets no certificate at all"))
	}
	if !d.GetChain() {
		l.add(warnf(dp+".chain", "chain is off: certbind gets no intermediates and cannot verify clients whose certificate chains through one"))
	}
	if d.GetFormat() != hcmv3.HttpConnectionManager_TEXT {
		l.add(errorf(dp+".format", "format %s: certbind parses Envoy's text XFCC format", d.GetFormat()))
	}
}

func (l *linter) authzFilter(s site, f authzFilter, mode hcmv3.HttpConnectionManager_ForwardClientCertDetails) {
	c := f.cfg
	if s.router >= 0 && f.index > s.router {
		l.add(errorf(f.path, "ext_authz comes after the router: it never runs"))
	}
	if !c.GetIncludePeerCertificate() {
		l.peerCertificateOff(f.path+".include_peer_certificate", s.hcm, mode)
	}
	if c.GetFailureModeAllow() {
		l.add(errorf(f.path+".failure_mode_allow", "failure_mode_allow lets requests through unchecked when certbind fails or times out"))
	}
	if c.GetShadowMode() {
		l.add(errorf(f.path+".shadow_mode", "shadow_mode: certbind's denials are not enforced"))
	}
	if (c.GetFilterEnabled() != nil || c.GetFilterEnabledMetadata() != nil) && !c.GetDenyAtDisable().GetDefaultValue().GetValue() {
		l.add(errorf(f.path+".filter_enabled", "filter_enabled or filter_enabled_metadata skips the check for some requests; set deny_at_disable to deny them instead"))
	}
	// AUTO (unset) is V3 in every Envoy that still runs: "it is the only supported version".
	//lint:ignore SA1019 V2 is deprecated, and that is what is reported
	if c.GetTransportApiVersion() == corev3.ApiVersion_V2 {
		l.add(errorf(f.path+".transport_api_version", "transport_api_version is V2: certbind serves envoy.service.auth.v3, set V3 or leave it unset"))
	}
	if c.GetHttpService() != nil {
		l.add(warnf(f.path+".http_service", "http_service: over HTTP Envoy sends certbind neither context_extensions (certbind_mode) nor source.certificate; prefer grpc_service"))
	}
	ah, ahPath := c.GetAllowedHeaders(), f.path+".allowed_headers"
	//lint:ignore SA1019 the deprecated http_service field still selects the headers when allowed_headers is unset
	if old := c.GetHttpService().GetAuthorizationRequest().GetAllowedHeaders(); ah == nil && old != nil {
		ah, ahPath = old, f.path+".http_service.authorization_request.allowed_headers"
	}
	if l.dpop {
		// Envoy sends a header only if allowed_headers lists it (over HTTP, only then or if it
		// is one of a few it always sends, which DPoP is not).
		const lost = "DPoP proofs never reach certbind, which refuses every DPoP-bound token (dpop_proof_missing)"
		switch {
		case ah != nil && !listMatches(ah, "dpop"):
			l.add(errorf(ahPath, "allowed_headers does not include dpop: "+lost))
		case ah == nil && c.GetHttpService() != nil:
			l.add(errorf(f.path+".allowed_headers", "http_service sends dpop only if allowed_headers lists it: "+lost))
		}
		if dh := c.GetDisallowedHeaders(); dh != nil && listMatches(dh, "dpop") {
			l.add(errorf(f.path+".disallowed_headers", "disallowed_headers removes dpop: "+lost))
		}
	}
	if mode != hcmv3.HttpConnectionManager_SANITIZE {
		switch {
		case ah != nil && !listMatches(ah, xfccHeader):
			l.add(errorf(ahPath, "allowed_headers does not include x-forwarded-client-cert: certbind gets no chain"))
		case ah == nil && c.GetHttpService() != nil:
			l.add(errorf(f.path+".allowed_headers", "http_service sends x-forwarded-client-cert only if allowed_headers lists it: certbind gets no chain"))
		}
		if dh := c.GetDisallowedHeaders(); dh != nil && listMatches(dh, xfccHeader) {
			l.add(errorf(f.path+".disallowed_headers", "disallowed_headers removes x-forwarded-client-cert: certbind gets no chain"))
		}
	}
	if g := c.GetGrpcService(); g != nil {
		if eg := g.GetEnvoyGrpc(); eg != nil {
			l.authzCluster(f.path+".grpc_service.envoy_grpc.cluster_name", eg.GetClusterName())
		}
	}
}

// peerCertificateOff: include_peer_certificate is off, which matters as much as certbind reads
// the peer certificate, and as little as Envoy's own XFCC element gives it the certificate.
func (l *linter) peerCertificateOff(path string, hcm *hcmv3.HttpConnectionManager, mode hcmv3.HttpConnectionManager_ForwardClientCertDetails) {
	xfccCert := (mode == hcmv3.HttpConnectionManager_SANITIZE_SET || mode == hcmv3.HttpConnectionManager_APPEND_FORWARD) &&
		hcm.GetSetCurrentClientCertDetails().GetCert()
	switch {
	case l.peer == "ignore":
	case l.peer == "require":
		l.add(errorf(path, "include_peer_certificate is off and certbind's certificate_sources.peer is require: certbind denies every request (no_certificate)"))
	case xfccCert:
		l.add(warnf(path, "include_peer_certificate is off: certbind reads the certificate from Envoy's XFCC element only; turn it on, or set certificate_sources.peer: ignore to say so"))
	default:
		l.add(errorf(path, "include_peer_certificate is off: certbind gets no source.certificate, the one certificate input no client can forge"))
	}
}

// authzCluster: the ext_authz gRPC cluster must exist and speak HTTP/2.
func (l *linter) authzCluster(path, name string) {
	c, i := staticCluster(l.b, name)
	if c == nil {
		if l.b.GetDynamicResources().GetCdsConfig() != nil {
			l.add(warnf(path, "cluster %q is not a static cluster; it may come from CDS, which cannot be checked offline", name))
			return
		}
		l.add(errorf(path, "cluster %q is not among static_resources.clusters", name))
		return
	}
	if !speaksHTTP2(c) {
		l.add(errorf(fmt.Sprintf("static_resources.clusters[%d]", i), "cluster %q does not speak HTTP/2 (no http2_protocol_options): gRPC to certbind fails and every check errors", name))
	}
}

func speaksHTTP2(c *clusterv3.Cluster) bool {
	//lint:ignore SA1019 the deprecated cluster-level field still selects HTTP/2
	if c.GetHttp2ProtocolOptions() != nil {
		return true
	}
	for _, a := range c.GetTypedExtensionProtocolOptions() {
		o, err := unpackAs[*httpv3.HttpProtocolOptions](a)
		if err != nil || o == nil {
			continue
		}
		if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
			return true
		}
		if o.GetAutoConfig() != nil && c.GetTransportSocket() != nil {
			return true // ALPN picks h2 over TLS; without TLS auto_config means HTTP/1.1
		}
	}
	return false
}

// listMatches reports whether a header name matches a ListStringMatcher. Header names are
// lower-case in Envoy; case is ignored here, so an upper-case pattern is not reported.
func listMatches(l *matcherv3.ListStringMatcher, name string) bool {
	for _, p := range l.GetPatterns() {
		if stringMatches(p, name) {
			return true
		}
	}
	return false
}

func stringMatches(m *matcherv3.StringMatcher, s string) bool {
	lower := strings.ToLower
	switch m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return lower(m.GetExact()) == s
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(s, lower(m.GetPrefix()))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(s, lower(m.GetSuffix()))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(s, lower(m.GetContains()))
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + m.GetSafeRegex().GetRegex() + ")$")
		return err == nil && re.MatchString(s)
	}
	return false
}

// routes: every virtual host needs a catch-all route (no route means no check), every route that
// reaches certbind a known certbind_mode, client_auth the request body.
func (l *linter) routes(s site) {
	hp := s.path
	switch {
	case s.hcm.GetRds() != nil:
		l.add(warnf(hp+".rds", "routes come from RDS: catch-all and certbind_mode cannot be checked offline"))
		return
	case s.hcm.GetScopedRoutes() != nil:
		l.add(warnf(hp+".scoped_routes", "scoped routes: catch-all and certbind_mode cannot be checked offline"))
		return
	}
	rc := s.hcm.GetRouteConfig()
	rcPath := hp + ".route_config"
	names := map[string]bool{}
	for _, f := range s.authz {
		names[f.name] = true
	}
	l.perRouteKeys(rcPath, rc, names)
	wildcard := false
	for vi, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d]", rcPath, vi)
		for _, d := range vh.GetDomains() {
			wildcard = wildcard || d == "*"
		}
		if vh.GetMatcher() != nil {
			l.add(warnf(vp+".matcher", "virtual host routes by a matcher tree: catch-all and certbind_mode cannot be checked"))
			continue
		}
		if l.publicHost(s, rcPath, rc, vi) {
			continue // ext_authz off for the whole virtual host: a deliberate public host
		}
		catchAll := false
		for ri, r := range vh.GetRoutes() {
			catchAll = catchAll || isCatchAll(r.GetMatch())
			l.routeFilters(s, r, fmt.Sprintf("%s.routes[%d]", vp, ri), routeLevels(rcPath, rc, vi, ri))
		}
		if !catchAll {
			l.add(warnf(vp+".routes", "no catch-all route (prefix \"/\"): a request that matches no route gets Envoy's own 404 without a check (no upstream is reached, certbind never sees it)"))
		}
	}
	if !wildcard {
		l.add(warnf(rcPath+".virtual_hosts", "no virtual host with domains [\"*\"]: a request for another host gets Envoy's own 404 without a check (no upstream is reached, certbind never sees it)"))
	}
}

// publicHost: every ext_authz filter is disabled for the whole virtual host.
func (l *linter) publicHost(s site, rcPath string, rc *routev3.RouteConfiguration, vi int) bool {
	for _, f := range s.authz {
		if !mergePerRoute(f.name, routeLevels(rcPath, rc, vi, -1)...).disabled {
			return false
		}
	}
	return true
}

// routeFilters checks the ext_authz filters that run on one route (Envoy Gateway, for one,
// installs one filter per policy, disabled by default, and enables one per route). A route
// that reaches an upstream with none of them is reported, unless a per-route config turns
// ext_authz off there on purpose.
func (l *linter) routeFilters(s site, r *routev3.Route, path string, levels []level) {
	active, off := 0, false
	for _, f := range s.authz {
		pr := mergePerRoute(f.name, levels...)
		off = off || pr.disabled
		if pr.active(f) {
			active++
			l.route(f, pr, path)
		}
	}
	if active > 0 || off || r.GetRoute() == nil {
		return // checked, public on purpose, or no upstream (direct response, redirect)
	}
	if isCatchAll(r.GetMatch()) {
		l.add(errorf(path, "no ext_authz filter runs on the catch-all route: every request no other route takes reaches the upstream without certbind"))
		return
	}
	l.add(warnf(path, "no ext_authz filter runs on this route: its requests reach the upstream without certbind; if it is public on purpose, say so with a per-route config that disables ext_authz"))
}

func (l *linter) route(f authzFilter, pr perRoute, path string) {
	if pr.disabled {
		return
	}
	mode, ok := pr.ext[modeKey]
	if !ok {
		l.add(warnf(path, "no certbind_mode in context_extensions: certbind falls back to its own routes, else denies (no_policy)"))
		return
	}
	mp := pr.extPath[modeKey]
	if !knownModes[mode] {
		l.add(errorf(mp, "unknown certbind_mode %q (want client_auth, bound_token or identity)", mode))
		return
	}
	if mode != modeClientAuth {
		return
	}
	switch body := pr.requestBody(f.cfg); {
	case body == nil:
		l.add(errorf(mp, "certbind_mode client_auth without with_request_body: certbind cannot read client_id from the token request body"))
	case body.GetAllowPartialMessage():
		l.add(warnf(mp, "certbind_mode client_auth with allow_partial_message: a token request over max_request_bytes reaches certbind cut short and is refused (request_malformed) instead of Envoy's 413"))
	}
}

// perRouteKeys: a per-route ext_authz config must sit under the name of an ext_authz filter of this
// connection manager, or Envoy never applies it.
func (l *linter) perRouteKeys(rcPath string, rc *routev3.RouteConfiguration, names map[string]bool) {
	check := func(lv level) {
		keys := make([]string, 0, len(lv.cfg))
		for k := range lv.cfg {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if names[k] {
				continue
			}
			if _, _, _, ok := extAuthzPerRoute(lv, k); ok {
				l.add(errorf(mapPath(lv.path, k), "per-route ext_authz config under %q, but no ext_authz filter has that name: Envoy ignores it", k))
			}
		}
	}
	check(level{path: rcPath + ".typed_per_filter_config", cfg: rc.GetTypedPerFilterConfig()})
	for vi, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d]", rcPath, vi)
		check(level{path: vp + ".typed_per_filter_config", cfg: vh.GetTypedPerFilterConfig()})
		for ri, r := range vh.GetRoutes() {
			check(level{path: fmt.Sprintf("%s.routes[%d].typed_per_filter_config", vp, ri), cfg: r.GetTypedPerFilterConfig()})
		}
	}
}

// eachAny calls fn for the message inside every Any below m.
func eachAny(m proto.Message, path string, fn func(path string, msg proto.Message)) {
	var visit func(m protoreflect.Message, path string) bool
	visit = func(m protoreflect.Message, path string) bool {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return true
		}
		if inner, err := unpack(a); err == nil {
			fn(path, inner)
			walkMessages(inner.ProtoReflect(), path, visit)
		}
		return false
	}
	walkMessages(m.ProtoReflect(), path, visit)
}
