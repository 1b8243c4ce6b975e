package envoygateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/deploy/deploytest"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	egvalidation "github.com/envoyproxy/gateway/api/v1alpha1/validation"
	jose "github.com/go-jose/go-jose/v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/testenv/pki"
)

const (
	// envoyClientIdentity is the URI SAN of Envoy Gateway's client certificate towards certbind
	// (Secret envoy-certbind-client), the only caller certbind accepts.
	envoyClientIdentity = "spiffe://example.org/envoy-gateway"
	// certbindHost is certbind's Service name and the DNS SAN of its server certificate
	// (deploy/kubernetes/README.md).
	certbindHost = "certbind.certbind.svc.cluster.local"
)

// routeWant is what each HTTPRoute must get from the SecurityPolicies: certbind's mode, whether
// the body is sent, or no check at all. Every route attached to the Gateway must be listed.
var routeWant = map[string]struct {
	mode   policy.Mode // "" for a public route
	body   bool
	sample []string // request paths the route takes
}{
	"oauth2-token": {mode: policy.ModeClientAuth, body: true, sample: []string{"/oauth2/token"}},
	"api":          {mode: policy.ModeBoundToken, sample: []string{"/api", "/api/orders"}},
	"catch-all":    {mode: policy.ModeIdentity, sample: []string{"/", "/internal/jobs", "/apix"}},
	"well-known":   {sample: []string{"/.well-known/openid-configuration"}},
}

// gateway returns the overlay's one Gateway and its HTTPS listener.
func gateway(t *testing.T, all []manifest) (*gwapiv1.Gateway, gwapiv1.Listener) {
	t.Helper()
	gw := only[*gwapiv1.Gateway](t, all)
	if len(gw.Spec.Listeners) != 1 {
		t.Fatalf("Gateway %s: %d listeners, want one (HTTPS)", gw.Name, len(gw.Spec.Listeners))
	}
	return gw, gw.Spec.Listeners[0]
}

func TestGateway(t *testing.T) {
	all := loadAll(t)
	gc := only[*gwapiv1.GatewayClass](t, all)
	gw, l := gateway(t, all)
	ep := only[*egv1a1.EnvoyProxy](t, all)

	if gc.Spec.ControllerName != egv1a1.GatewayControllerName {
		t.Errorf("GatewayClass controllerName %q, want Envoy Gateway's %q", gc.Spec.ControllerName, egv1a1.GatewayControllerName)
	}
	if string(gw.Spec.GatewayClassName) != gc.Name {
		t.Errorf("Gateway class %q, want %q", gw.Spec.GatewayClassName, gc.Name)
	}
	// The EnvoyProxy with the client certificate towards certbind is the class's.
	if p := gc.Spec.ParametersRef; p == nil || string(p.Group) != egv1a1.GroupName || string(p.Kind) != egv1a1.KindEnvoyProxy ||
		p.Name != ep.Name || p.Namespace == nil || string(*p.Namespace) != ep.Namespace {
		t.Errorf("GatewayClass parametersRef %+v, want EnvoyProxy %s/%s", p, ep.Namespace, ep.Name)
	}
	if gw.Spec.Infrastructure != nil && gw.Spec.Infrastructure.ParametersRef != nil {
		t.Error("Gateway infrastructure.parametersRef would replace the class's EnvoyProxy")
	}
	// Gateway.spec.tls.backend replaces EnvoyProxy.spec.backendTLS entirely, ALPN h2 included
	// (Envoy Gateway's GatewayContext.GetBackendTLSConfig).
	if gw.Spec.TLS != nil && gw.Spec.TLS.Backend != nil {
		t.Error("Gateway spec.tls.backend set: Envoy would lose the EnvoyProxy's ALPN h2 towards certbind")
	}

	if l.Protocol != gwapiv1.HTTPSProtocolType || l.TLS == nil || ptr.Deref(l.TLS.Mode, gwapiv1.TLSModeTerminate) != gwapiv1.TLSModeTerminate {
		t.Fatalf("listener %s: protocol %s, want HTTPS terminated at the Gateway (the client certificate ends there)", l.Name, l.Protocol)
	}
	if len(l.TLS.CertificateRefs) != 1 {
		t.Errorf("listener %s: %d certificateRefs, want 1", l.Name, len(l.TLS.CertificateRefs))
	}
	for _, r := range l.TLS.CertificateRefs {
		if ptr.Deref(r.Kind, "Secret") != "Secret" || ptr.Deref(r.Group, "") != "" || r.Namespace != nil {
			t.Errorf("listener %s: certificateRef %+v, want a Secret of the Gateway's namespace", l.Name, r)
		}
	}
	if ar := l.AllowedRoutes; ar == nil || ar.Namespaces == nil || ptr.Deref(ar.Namespaces.From, "") != gwapiv1.NamespacesFromSame {
		t.Errorf("listener %s: allowedRoutes must be namespaces.from Same: a route of another namespace would escape this namespace's policies", l.Name)
	}
}

func TestHTTPRoutes(t *testing.T) {
	all := loadAll(t)
	gw, l := gateway(t, all)
	var names []string
	for _, r := range objects[*gwapiv1.HTTPRoute](all) {
		names = append(names, r.Name)
		if r.Namespace != gw.Namespace {
			t.Errorf("HTTPRoute %s: namespace %s, want the Gateway's %s (allowedRoutes Same)", r.Name, r.Namespace, gw.Namespace)
		}
		if len(r.Spec.Hostnames) != 0 {
			t.Errorf("HTTPRoute %s: hostnames: the catch-all must take every host", r.Name)
		}
		if len(r.Spec.ParentRefs) != 1 {
			t.Fatalf("HTTPRoute %s: %d parentRefs, want the Gateway", r.Name, len(r.Spec.ParentRefs))
		}
		p := r.Spec.ParentRefs[0]
		if ptr.Deref(p.Kind, "Gateway") != "Gateway" || ptr.Deref(p.Group, gwapiv1.GroupName) != gwapiv1.GroupName ||
			string(p.Name) != gw.Name || ptr.Deref(p.SectionName, l.Name) != l.Name || p.Namespace != nil {
			t.Errorf("HTTPRoute %s: parentRef %+v, want Gateway %s listener %s", r.Name, p, gw.Name, l.Name)
		}
		if len(r.Spec.Rules) != 1 || len(r.Spec.Rules[0].Matches) != 1 || r.Spec.Rules[0].Matches[0].Path == nil {
			t.Fatalf("HTTPRoute %s: want one rule with one path match", r.Name)
		}
		m := r.Spec.Rules[0].Matches[0]
		if ptr.Deref(m.Path.Type, gwapiv1.PathMatchPathPrefix) != gwapiv1.PathMatchPathPrefix || len(m.Headers) != 0 || len(m.QueryParams) != 0 || m.Method != nil {
			t.Errorf("HTTPRoute %s: want a plain PathPrefix match", r.Name)
		}
		if len(r.Spec.Rules[0].Filters) != 0 {
			t.Errorf("HTTPRoute %s: filters (a rewrite would make the upstream path differ from the one certbind decided on)", r.Name)
		}
		for _, b := range r.Spec.Rules[0].BackendRefs {
			if ptr.Deref(b.Kind, "Service") != "Service" || b.Namespace != nil || b.Port == nil {
				t.Errorf("HTTPRoute %s: backendRef %+v, want a Service port of this namespace", r.Name, b.BackendObjectReference)
			}
		}
		if want, ok := routeWant[r.Name]; ok {
			for _, s := range want.sample {
				if !pathPrefixMatches(*m.Path.Value, s) {
					t.Errorf("HTTPRoute %s (PathPrefix %s) does not take %s", r.Name, *m.Path.Value, s)
				}
			}
		}
	}
	slices.Sort(names)
	var want []string
	for n := range routeWant {
		want = append(want, n)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("HTTPRoutes %v, want %v (routeWant: each route's certbind mode)", names, want)
	}
	// Each sample path lands on its route: the longest matching prefix wins.
	for name, w := range routeWant {
		for _, s := range w.sample {
			if got := routeFor(t, all, s); got != name {
				t.Errorf("%s goes to HTTPRoute %s, want %s", s, got, name)
			}
		}
	}
}

// pathPrefixMatches is Gateway API PathPrefix as Envoy Gateway programs it: Envoy's
// path_separated_prefix of the value without a trailing "/".
func pathPrefixMatches(prefix, path string) bool {
	p := strings.TrimSuffix(prefix, "/")
	return p == "" || path == p || strings.HasPrefix(path, p+"/")
}

// routeFor is the HTTPRoute that takes path: the longest matching prefix.
func routeFor(t *testing.T, all []manifest, path string) string {
	t.Helper()
	best, bestLen := "", -1
	for _, r := range objects[*gwapiv1.HTTPRoute](all) {
		v := *r.Spec.Rules[0].Matches[0].Path.Value
		if pathPrefixMatches(v, path) && len(strings.TrimSuffix(v, "/")) > bestLen {
			best, bestLen = r.Name, len(strings.TrimSuffix(v, "/"))
		}
	}
	return best
}

// effectivePolicy is the SecurityPolicy Envoy Gateway applies to an HTTPRoute: the one
// targeting the route, else the one targeting its Gateway (no mergeType: the most specific
// policy replaces the others).
func effectivePolicy(t *testing.T, all []manifest, route *gwapiv1.HTTPRoute) *egv1a1.SecurityPolicy {
	t.Helper()
	gw, _ := gateway(t, all)
	var onRoute, onGateway []*egv1a1.SecurityPolicy
	for _, sp := range objects[*egv1a1.SecurityPolicy](all) {
		for _, ref := range sp.Spec.TargetRefs {
			switch {
			case ref.Kind == "HTTPRoute" && string(ref.Name) == route.Name && sp.Namespace == route.Namespace:
				onRoute = append(onRoute, sp)
			case ref.Kind == "Gateway" && string(ref.Name) == gw.Name && sp.Namespace == gw.Namespace:
				onGateway = append(onGateway, sp)
			}
		}
	}
	if len(onRoute) > 1 || len(onGateway) > 1 {
		t.Fatalf("HTTPRoute %s: %d route policies and %d Gateway policies: Envoy Gateway would keep the oldest only", route.Name, len(onRoute), len(onGateway))
	}
	if len(onRoute) == 1 {
		return onRoute[0]
	}
	if len(onGateway) == 1 {
		return onGateway[0]
	}
	return nil
}

// modeOf reads a SecurityPolicy's certbind_mode context extension.
func modeOf(t *testing.T, sp *egv1a1.SecurityPolicy) policy.Mode {
	t.Helper()
	ea := sp.Spec.ExtAuth
	if ea == nil {
		return ""
	}
	if len(ea.ContextExtensions) != 1 {
		t.Fatalf("SecurityPolicy %s: %d contextExtensions, want only %s", sp.Name, len(ea.ContextExtensions), extauthz.ModeKey)
	}
	ce := ea.ContextExtensions[0]
	if ce == nil || ce.Name != extauthz.ModeKey || ce.Type != egv1a1.ContextExtensionValueTypeValue || ce.Value == nil || ce.ValueRef != nil {
		t.Fatalf("SecurityPolicy %s: context extension %+v, want %s with an inline value", sp.Name, ce, extauthz.ModeKey)
	}
	m, err := policy.ParseMode(*ce.Value)
	if err != nil {
		t.Fatalf("SecurityPolicy %s: %v", sp.Name, err)
	}
	return m
}

func TestSecurityPolicies(t *testing.T) {
	all := loadAll(t)
	rendered := render(t)
	gw, _ := gateway(t, all)
	svc := named[*corev1.Service](t, rendered, "certbind", "certbind")
	grpcPort := servicePort(t, svc, "grpc")

	// Every target exists.
	for _, sp := range objects[*egv1a1.SecurityPolicy](all) {
		if sp.Spec.TargetRef != nil || len(sp.Spec.TargetSelectors) != 0 || len(sp.Spec.TargetRefs) != 1 {
			t.Errorf("SecurityPolicy %s: want exactly one targetRefs entry (no targetRef, no targetSelectors)", sp.Name)
		}
		if sp.Spec.MergeType != nil {
			t.Errorf("SecurityPolicy %s: mergeType: a route policy must replace the Gateway's, not merge with it", sp.Name)
		}
		for _, ref := range sp.Spec.TargetRefs {
			found := false
			switch ref.Kind {
			case "Gateway":
				found = string(ref.Name) == gw.Name && sp.Namespace == gw.Namespace
			case "HTTPRoute":
				for _, r := range objects[*gwapiv1.HTTPRoute](all) {
					found = found || (string(ref.Name) == r.Name && sp.Namespace == r.Namespace)
				}
			}
			if !found || ref.Group != gwapiv1.GroupName || ref.SectionName != nil {
				t.Errorf("SecurityPolicy %s: target %s %s is not a Gateway or HTTPRoute of its namespace", sp.Name, ref.Kind, ref.Name)
			}
		}
	}

	// Each route gets its mode.
	for _, r := range objects[*gwapiv1.HTTPRoute](all) {
		want := routeWant[r.Name]
		sp := effectivePolicy(t, all, r)
		if sp == nil {
			t.Errorf("HTTPRoute %s: no SecurityPolicy applies", r.Name)
			continue
		}
		if got := modeOf(t, sp); got != want.mode {
			t.Errorf("HTTPRoute %s: SecurityPolicy %s sends certbind_mode %q, want %q", r.Name, sp.Name, got, want.mode)
		}
		if want.mode == "" {
			// Public: an explicit allow replaces the Gateway's policy; nothing else in it.
			az := sp.Spec.Authorization
			if az == nil || ptr.Deref(az.DefaultAction, egv1a1.AuthorizationActionDeny) != egv1a1.AuthorizationActionAllow || len(az.Rules) != 0 ||
				sp.Spec.ExtAuth != nil || sp.Spec.JWT != nil || sp.Spec.OIDC != nil || sp.Spec.BasicAuth != nil || sp.Spec.APIKeyAuth != nil {
				t.Errorf("HTTPRoute %s: SecurityPolicy %s must be authorization.defaultAction Allow and nothing else", r.Name, sp.Name)
			}
			continue
		}
		if got := sp.Spec.ExtAuth.BodyToExtAuth != nil; got != want.body {
			t.Errorf("HTTPRoute %s: body to certbind %v, want %v (client_auth reads client_id from the form body)", r.Name, got, want.body)
		}
	}

	// The Gateway's own policy is the default for routes added later: identity.
	var gwPolicies []string
	for _, sp := range objects[*egv1a1.SecurityPolicy](all) {
		if sp.Spec.TargetRefs[0].Kind == "Gateway" {
			gwPolicies = append(gwPolicies, sp.Name)
			if m := modeOf(t, sp); m != policy.ModeIdentity {
				t.Errorf("SecurityPolicy %s on the Gateway: mode %q, want identity (a certificate of a registered client) for every route without its own policy", sp.Name, m)
			}
		}
	}
	if len(gwPolicies) != 1 {
		t.Errorf("SecurityPolicies on the Gateway: %v, want one", gwPolicies)
	}

	// Every ext auth: certbind's gRPC port, failing closed, every header.
	for _, sp := range objects[*egv1a1.SecurityPolicy](all) {
		ea := sp.Spec.ExtAuth
		if ea == nil {
			continue
		}
		if ea.HTTP != nil || ea.GRPC == nil {
			t.Errorf("SecurityPolicy %s: want extAuth.grpc (certbind's ext_authz v3 gRPC service; context extensions exist only there)", sp.Name)
			continue
		}
		if ea.GRPC.BackendRef != nil || len(ea.GRPC.BackendRefs) != 1 {
			t.Errorf("SecurityPolicy %s: want exactly one backendRefs entry", sp.Name)
			continue
		}
		b := ea.GRPC.BackendRefs[0]
		if ptr.Deref(b.Kind, "Service") != "Service" || ptr.Deref(b.Group, "") != "" || string(b.Name) != svc.Name ||
			string(ptr.Deref(b.Namespace, gwapiv1.Namespace(sp.Namespace))) != svc.Namespace || ptr.Deref(b.Port, 0) != grpcPort {
			t.Errorf("SecurityPolicy %s: backend %+v, want Service %s/%s port %d", sp.Name, b.BackendObjectReference, svc.Namespace, svc.Name, grpcPort)
		}
		if ea.FailOpen == nil || *ea.FailOpen {
			t.Errorf("SecurityPolicy %s: failOpen must be set, to false: certbind unreachable must deny", sp.Name)
		}
		if code := ptr.Deref(ea.StatusOnError, 403); code != 503 {
			t.Errorf("SecurityPolicy %s: statusOnError %d, want 503 (an outage, not a denial: clients retry)", sp.Name, code)
		}
		if ea.Timeout == nil {
			t.Errorf("SecurityPolicy %s: no timeout (Envoy Gateway's default is 10s)", sp.Name)
		} else if d, err := time.ParseDuration(string(*ea.Timeout)); err != nil || d > time.Second {
			t.Errorf("SecurityPolicy %s: timeout %s, want at most 1s", sp.Name, *ea.Timeout)
		}
		// headersToExtAuth becomes Envoy's allowed_headers: XFCC (the certificate), Authorization
		// (the token) and Content-Type (the token request) must be among them.
		if len(ea.HeadersToExtAuth) > 0 {
			for _, h := range []string{"x-forwarded-client-cert", "authorization", "content-type"} {
				if !slices.ContainsFunc(ea.HeadersToExtAuth, func(s string) bool { return strings.EqualFold(s, h) }) {
					t.Errorf("SecurityPolicy %s: headersToExtAuth %v leaves out %s", sp.Name, ea.HeadersToExtAuth, h)
				}
			}
		}
		if ptr.Deref(ea.RecomputeRoute, false) {
			t.Errorf("SecurityPolicy %s: recomputeRoute: certbind's headers must not move the request to another route", sp.Name)
		}
		if sp.Spec.Authorization != nil || sp.Spec.JWT != nil || sp.Spec.OIDC != nil || sp.Spec.BasicAuth != nil || sp.Spec.APIKeyAuth != nil {
			t.Errorf("SecurityPolicy %s: only extAuth: certbind decides", sp.Name)
		}
		// The cross-namespace reference is granted.
		if ns := ptr.Deref(b.Namespace, gwapiv1.Namespace(sp.Namespace)); string(ns) != sp.Namespace && !granted(all, sp.Namespace, string(ns), string(b.Name)) {
			t.Errorf("SecurityPolicy %s: no ReferenceGrant in %s lets it reach Service %s", sp.Name, ns, b.Name)
		}
	}
}

func granted(all []manifest, fromNamespace, toNamespace, service string) bool {
	for _, g := range objects[*gwapiv1b1.ReferenceGrant](all) {
		if g.Namespace != toNamespace {
			continue
		}
		from := slices.ContainsFunc(g.Spec.From, func(f gwapiv1b1.ReferenceGrantFrom) bool {
			return f.Group == egv1a1.GroupName && f.Kind == egv1a1.KindSecurityPolicy && string(f.Namespace) == fromNamespace
		})
		to := slices.ContainsFunc(g.Spec.To, func(to gwapiv1b1.ReferenceGrantTo) bool {
			return to.Group == "" && to.Kind == "Service" && (to.Name == nil || string(*to.Name) == service)
		})
		if from && to {
			return true
		}
	}
	return false
}

func servicePort(t *testing.T, svc *corev1.Service, name string) gwapiv1.PortNumber {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return gwapiv1.PortNumber(p.Port)
		}
	}
	t.Fatalf("Service %s has no port %s", svc.Name, name)
	return 0
}

func TestClientTrafficPolicy(t *testing.T) {
	all := loadAll(t)
	gw, _ := gateway(t, all)
	ctp := only[*egv1a1.ClientTrafficPolicy](t, all)

	if len(ctp.Spec.TargetRefs) != 1 || ctp.Spec.TargetRef != nil || len(ctp.Spec.TargetSelectors) != 0 ||
		ctp.Spec.TargetRefs[0].Kind != "Gateway" || string(ctp.Spec.TargetRefs[0].Name) != gw.Name || ctp.Namespace != gw.Namespace ||
		ctp.Spec.TargetRefs[0].SectionName != nil {
		t.Errorf("ClientTrafficPolicy %s: want one target, the whole Gateway %s", ctp.Name, gw.Name)
	}

	// Mutual TLS: a verified client certificate or no connection.
	tls := ctp.Spec.TLS
	if tls == nil || tls.ClientValidation == nil {
		t.Fatal("tls.clientValidation missing: Envoy would not ask for a client certificate")
	}
	cv := tls.ClientValidation
	if cv.Optional {
		t.Error("clientValidation.optional: true accepts connections without a client certificate")
	}
	if ptr.Deref(cv.Mode, "") != egv1a1.ClientValidationRequireAndVerify {
		t.Errorf("clientValidation.mode %v, want RequireAndVerify (set explicitly)", ptr.Deref(cv.Mode, "unset"))
	}
	if ptr.Deref(cv.AllowExpiredCertificate, false) {
		t.Error("clientValidation.allowExpiredCertificate")
	}
	if len(cv.CACertificateRefs) != 1 {
		t.Errorf("clientValidation.caCertificateRefs: %d, want the clients' CA", len(cv.CACertificateRefs))
	}
	for _, r := range cv.CACertificateRefs {
		if k := ptr.Deref(r.Kind, "Secret"); (k != "ConfigMap" && k != "Secret") || ptr.Deref(r.Group, "") != "" || r.Namespace != nil {
			t.Errorf("caCertificateRef %+v: want a ConfigMap or Secret of the Gateway's namespace", r)
		}
	}
	if v := ptr.Deref(tls.MinVersion, egv1a1.TLSv12); v != egv1a1.TLSv12 && v != egv1a1.TLSv13 {
		t.Errorf("tls.minVersion %s", v)
	}

	// Paths normalized before routing: certbind refuses paths that are not in normal form.
	if p := ctp.Spec.Path; p != nil {
		if a := ptr.Deref(p.EscapedSlashesAction, egv1a1.UnescapeAndRedirect); a != egv1a1.UnescapeAndRedirect && a != egv1a1.RejectRequestAction {
			t.Errorf("path.escapedSlashesAction %s: /api%%2F.. must not select a route other than the upstream's", a)
		}
		if ptr.Deref(p.DisableMergeSlashes, false) {
			t.Error("path.disableMergeSlashes: //api would route differently than /api")
		}
	}

	// XFCC as certbind.yaml expects it.
	x := xfccSettings(t, ctp)
	cfg, _ := parseCertbindConfig(t, render(t), nil)
	if cfg.Sources.Peer != policy.SourceIgnore || cfg.Sources.XFCC != policy.SourceRequire {
		t.Errorf("certificate_sources peer %s xfcc %s, want ignore and require: Envoy Gateway sends no peer certificate (envoyproxy/gateway#7360), XFCC is the only source",
			cfg.Sources.Peer, cfg.Sources.XFCC)
	}
	switch x.mode {
	case egv1a1.XFCCForwardModeSanitizeSet:
		if cfg.XFCC.Elements != policy.ElementsSingle {
			t.Errorf("XFCC mode SanitizeSet writes one element: certbind's xfcc.elements is %s, want single", cfg.XFCC.Elements)
		}
	default:
		// AppendForward would need xfcc.elements last, which needs the peer certificate that
		// Envoy Gateway cannot send; the others forward what the client wrote, or nothing.
		t.Errorf("XFCC mode %s: want SanitizeSet", x.mode)
	}
	if !x.details.Cert {
		t.Error("certDetailsToAdd lacks Cert: certbind reads the certificate from XFCC Cert")
	}
	// Without Chain, certbind needs the intermediates in certbind.yaml: TestCheckRequests
	// verifies a client chaining through an intermediate with these very details.
	if x.details.URI || x.details.DNS {
		t.Error("certDetailsToAdd URI or DNS: Envoy does not escape them (envoy#32945)")
	}
}

func TestTLSToCertbind(t *testing.T) {
	all := loadAll(t)
	rendered := render(t)
	svc := named[*corev1.Service](t, rendered, "certbind", "certbind")
	btp := only[*gwapiv1.BackendTLSPolicy](t, all)
	ep := only[*egv1a1.EnvoyProxy](t, all)

	// Envoy verifies certbind's server certificate and name.
	if btp.Namespace != svc.Namespace || len(btp.Spec.TargetRefs) != 1 {
		t.Fatalf("BackendTLSPolicy %s/%s: want it in %s, with one target", btp.Namespace, btp.Name, svc.Namespace)
	}
	tr := btp.Spec.TargetRefs[0]
	if tr.Group != "" || tr.Kind != "Service" || string(tr.Name) != svc.Name || tr.SectionName == nil || string(*tr.SectionName) != "grpc" {
		t.Errorf("BackendTLSPolicy target %+v, want Service %s port grpc", tr, svc.Name)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "grpc" && ptr.Deref(p.AppProtocol, "") != "grpc" {
			t.Errorf("Service port grpc: appProtocol %q", ptr.Deref(p.AppProtocol, ""))
		}
	}
	v := btp.Spec.Validation
	if string(v.Hostname) != certbindHost {
		t.Errorf("BackendTLSPolicy hostname %q, want %s (certbind's certificate, and the SNI)", v.Hostname, certbindHost)
	}
	if v.WellKnownCACertificates != nil || len(v.CACertificateRefs) != 1 || v.CACertificateRefs[0].Kind != "ConfigMap" || v.CACertificateRefs[0].Group != "" {
		t.Errorf("BackendTLSPolicy validation: want one ConfigMap CA (certbind's private CA), not the system roots")
	}
	for _, san := range v.SubjectAltNames {
		if san.Type != gwapiv1.HostnameSubjectAltNameType || string(san.Hostname) != certbindHost {
			t.Errorf("BackendTLSPolicy subjectAltNames %+v: certbind's certificate has DNS SAN %s", san, certbindHost)
		}
	}
	k8sReadme, err := os.ReadFile(filepath.Join(base, "README.md"))
	if err != nil || !strings.Contains(string(k8sReadme), certbindHost) {
		t.Errorf("%s/README.md does not name certbind's DNS SAN %s (%v)", base, certbindHost, err)
	}

	// Envoy presents its client certificate, with ALPN h2.
	if err := egvalidation.ValidateEnvoyProxy(ep); err != nil {
		t.Errorf("EnvoyProxy %s: Envoy Gateway's own validation: %v", ep.Name, err)
	}
	bt := ep.Spec.BackendTLS
	if bt == nil || bt.ClientCertificateRef == nil {
		t.Fatal("EnvoyProxy backendTLS.clientCertificateRef missing: certbind refuses callers without a client certificate")
	}
	ref := bt.ClientCertificateRef
	if ptr.Deref(ref.Kind, "Secret") != "Secret" || ptr.Deref(ref.Group, "") != "" || string(ptr.Deref(ref.Namespace, gwapiv1.Namespace(ep.Namespace))) != ep.Namespace {
		t.Errorf("clientCertificateRef %+v: Envoy Gateway wants a Secret in the EnvoyProxy's namespace", ref)
	}
	if !slices.Contains(bt.ALPNProtocols, egv1a1.ALPNProtocol("h2")) {
		t.Errorf("backendTLS.alpnProtocols %v: grpc-go (certbind) refuses TLS connections without ALPN h2", bt.ALPNProtocols)
	}

	// certbind accepts that certificate and no other caller.
	d := named[*appsv1.Deployment](t, rendered, "certbind", "certbind")
	flags := serveArgs(t, deploytest.CertbindContainer(t, d).Args)
	defined := deploytest.ServeFlagNames(t)
	for name := range flags {
		if !defined[name] {
			t.Errorf("--%s: cmd/certbind/serve.go defines no such flag", name)
		}
	}
	if flags["allowed-callers"] != envoyClientIdentity {
		t.Errorf("--allowed-callers=%q, want only %s", flags["allowed-callers"], envoyClientIdentity)
	}
	if flags["tls-client-ca"] == "" || flags["tls-cert"] == "" {
		t.Error("certbind's gRPC listener must be TLS with client certificates (--tls-cert, --tls-client-ca)")
	}

	// What the manifests reference but do not ship is in the README's setup.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, l := gateway(t, all)
	ctp := only[*egv1a1.ClientTrafficPolicy](t, all)
	mentioned := []string{envoyClientIdentity, string(ref.Name), string(v.CACertificateRefs[0].Name), string(l.TLS.CertificateRefs[0].Name)}
	for _, r := range ctp.Spec.TLS.ClientValidation.CACertificateRefs {
		mentioned = append(mentioned, string(r.Name))
	}
	for _, m := range mentioned {
		if !strings.Contains(string(readme), "`"+m) {
			t.Errorf("README.md does not explain %s", m)
		}
	}
}

// serveArgs parses the container's arguments: "serve" then --name=value.
func serveArgs(t *testing.T, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %q: want the serve subcommand first", args)
	}
	flags := map[string]string{}
	for _, a := range args[1:] {
		kv, ok := strings.CutPrefix(a, "--")
		name, val, hasVal := strings.Cut(kv, "=")
		if !ok || !hasVal {
			t.Fatalf("args: %q is not --flag=value", a)
		}
		if _, dup := flags[name]; dup {
			t.Fatalf("args: --%s twice", name)
		}
		flags[name] = val
	}
	return flags
}

// clientPKI is what the Secret certbind-client-ca holds, generated: a root (pki/ca.pem, the
// trust anchor), an intermediate the clients' certificates chain through (sent by the clients,
// so only in XFCC Chain), and the partner's pinned self-signed certificate.
type clientPKI struct {
	root, intermediate         *pki.Cert
	billing, reports, stranger *pki.Cert
	partner                    *pki.Cert
}

func newClientPKI(t *testing.T, dir string) *clientPKI {
	t.Helper()
	p := &clientPKI{root: pki.NewRoot("certbind test client root")}
	p.intermediate = p.root.Intermediate("certbind test client intermediate")
	p.billing = p.intermediate.Leaf("billing", pki.Subject("CN=billing,OU=Payments,O=Example Corp,C=SE"))
	p.reports = p.intermediate.Leaf("reports", pki.URI("spiffe://example.org/reports"))
	p.stranger = p.intermediate.Leaf("stranger", pki.Subject("CN=stranger,O=Example Corp,C=SE"))
	p.partner = pki.SelfSigned("partner")
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: p.partner.Cert.PublicKey, KeyID: "partner", Use: "sig", Certificates: []*x509.Certificate{p.partner.Cert},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.pem": p.root.PEM(), "partner.jwks.json": jwks} {
		if err := os.WriteFile(filepath.Join(dir, "pki", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// parseCertbindConfig loads the rendered ConfigMap's certbind.yaml as certbind does, from a
// directory laid out like the pod's /etc/certbind with a generated client PKI.
func parseCertbindConfig(t *testing.T, rendered []manifest, opt *policy.LoadOptions) (*policy.Config, *clientPKI) {
	t.Helper()
	cm := named[*corev1.ConfigMap](t, rendered, "certbind", "certbind-config")
	data, ok := cm.Data["certbind.yaml"]
	if !ok {
		t.Fatal("ConfigMap certbind-config has no certbind.yaml")
	}
	dir := t.TempDir()
	p := newClientPKI(t, dir)
	if opt == nil {
		opt = &policy.LoadOptions{}
	}
	cfg, err := policy.ParseConfig([]byte(data), dir, *opt)
	if err != nil {
		t.Fatalf("certbind.yaml does not load: %v", err)
	}
	for _, w := range cfg.Warnings() {
		t.Errorf("certbind.yaml: warning: %s", w)
	}
	return cfg, p
}

// The routes in certbind.yaml give each HTTPRoute's paths the mode its SecurityPolicy sends, so
// the two cannot drift apart.
func TestCertbindRoutesAgreeWithThePolicies(t *testing.T) {
	all := loadAll(t)
	cfg, _ := parseCertbindConfig(t, render(t), nil)
	engine := policy.NewEngine(policy.EngineConfig{Config: cfg})
	for _, r := range objects[*gwapiv1.HTTPRoute](all) {
		sp := effectivePolicy(t, all, r)
		mode := modeOf(t, sp)
		if mode == "" {
			continue // not sent to certbind
		}
		for _, pth := range routeWant[r.Name].sample {
			dec := engine.Decide(context.Background(), policy.Input{Request: policy.Request{
				Method: "POST", Host: "api.example.org", Path: pth, Headers: map[string]string{},
			}})
			if dec.Mode != mode {
				t.Errorf("%s (HTTPRoute %s): certbind's routes choose mode %q (%s), the SecurityPolicy %s sends %q", pth, r.Name, dec.Mode, dec.Reason, sp.Name, mode)
			}
			if dec.Allow {
				t.Errorf("%s: a request without certificate was allowed", pth)
			}
		}
	}
}
