package policy

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/certbind/certbind/policy/token"
)

type route struct {
	prefix string
	// separated: prefix matches whole path segments only (Envoy's path_separated_prefix):
	// "/api/admin" matches "/api/admin" and "/api/admin/x", never "/api/administrator".
	separated bool
	host      string // CanonicalHost form; "" matches any
	mode      Mode
	// clients, when set, are the only registered clients the route lets through.
	clients map[string]struct{}

	// bound_token options
	scopes             []string
	binding            Binding // "" inherits the issuer's
	requireClientMatch *bool   // nil inherits the issuer's
}

// matches reports whether the route takes a request for host (canonical) and path (without
// its query).
func (rt *route) matches(host, path string) bool {
	if rt.host != "" && rt.host != host {
		return false
	}
	if !strings.HasPrefix(path, rt.prefix) {
		return false
	}
	return !rt.separated || len(path) == len(rt.prefix) || path[len(rt.prefix)] == '/'
}

// allows applies routes[].clients to the request's authenticated client.
func (rt *route) allows(clientID string) error {
	if rt == nil || rt.clients == nil {
		return nil
	}
	if _, ok := rt.clients[clientID]; !ok {
		return fmt.Errorf("client %q is not among the route's clients", clientID)
	}
	return nil
}

// matchRoute picks the first configured route matching the request's host and path (without
// its query), nil when none does. With routes configured, the host must be host[:port] and is
// compared in canonical form (CanonicalHost), and the path must be in normal form: upstreams
// route on the normalized path, so a path that normalizes elsewhere (/api/%61dmin,
// /api//admin, /api/x/../admin) could dodge a route's scopes here and is refused instead.
func (c *Config) matchRoute(r Request) (*route, error) {
	if len(c.routes) == 0 {
		return nil, nil
	}
	path, _, _ := strings.Cut(r.Path, "?")
	if err := normalPath(path); err != nil {
		return nil, err
	}
	h, err := CanonicalHost(r.Host)
	if err != nil {
		return nil, err
	}
	for i := range c.routes {
		if rt := &c.routes[i]; rt.matches(h, path) {
			return rt, nil
		}
	}
	return nil, nil
}

// normalPath refuses a request path that a proxy or upstream could normalize into another:
// an empty or relative path, an empty, "." or ".." segment, a backslash, and a percent-escape
// that is malformed or encodes an unreserved character (RFC 3986 section 6.2.2.2), '/' or '\'.
func normalPath(p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("path %q does not start with '/'", p)
	}
	for rest := p[1:]; ; {
		seg, next, more := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return fmt.Errorf("path %q has a dot segment", p)
		case seg == "" && more:
			return fmt.Errorf("path %q has an empty segment", p)
		}
		if !more {
			break
		}
		rest = next
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			return fmt.Errorf("path %q has a backslash", p)
		case '%':
			b, err := url.PathUnescape(p[i:min(i+3, len(p))])
			if err != nil || len(b) != 1 {
				return fmt.Errorf("path %q has a malformed percent-escape", p)
			}
			if c := b[0]; c == '/' || c == '\\' || c == '-' || c == '.' || c == '_' || c == '~' ||
				'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				return fmt.Errorf("path %q percent-encodes %q", p, c)
			}
			i += 2
		}
	}
	return nil
}

// route compiles routes[i]; ok is false when it has errors (reported to b).
func (b *builder) route(path string, r *fileRoute, f *fileConfig, c *Config) (route, bool) {
	nerr := len(b.errs)
	m, err := ParseMode(r.Mode)
	if err != nil {
		b.errf(path+".mode", "%v", err)
	}
	rt := route{prefix: r.PathPrefix, mode: m, requireClientMatch: r.RequireClientMatch}
	switch {
	case r.PathPrefix != "" && r.PathSeparatedPrefix != "":
		b.errf(path, "path_prefix and path_separated_prefix are exclusive")
	case r.PathSeparatedPrefix != "":
		// Envoy's path_separated_prefix: no trailing '/', no query or fragment.
		rt.prefix, rt.separated = r.PathSeparatedPrefix, true
		if !strings.HasPrefix(rt.prefix, "/") || strings.HasSuffix(rt.prefix, "/") || strings.ContainsAny(rt.prefix, "?#") {
			b.errf(path+".path_separated_prefix", "%q must start with / and end without one, with no ? or #", rt.prefix)
		}
	case !strings.HasPrefix(r.PathPrefix, "/"):
		b.errf(path+".path_prefix", "%q must start with /", r.PathPrefix)
	}
	if r.Host != "" {
		h, err := CanonicalHost(r.Host)
		port := strings.Contains(r.Host, ":")
		if strings.HasPrefix(r.Host, "[") {
			port = !strings.HasSuffix(r.Host, "]")
		}
		if err != nil || port {
			b.errf(path+".host", "%q is not a host name or IP address (without a port)", r.Host)
		}
		rt.host = h
	}
	for j, sc := range r.Scopes {
		if !token.ValidScope(sc) {
			b.errf(fmt.Sprintf("%s.scopes[%d]", path, j), "%q is not an RFC 6749 scope token", sc)
		}
	}
	rt.scopes = r.Scopes
	if r.Binding != "" {
		bind, ok := parseBinding(r.Binding)
		if !ok {
			b.errf(path+".binding", "%q: want %s", r.Binding, bindingNames)
		}
		rt.binding = bind
	}
	if m != ModeBoundToken && (len(r.Scopes) > 0 || r.Binding != "" || r.RequireClientMatch != nil) {
		b.errf(path, "scopes, binding and require_client_match apply to bound_token routes only")
	}
	if m == ModeBoundToken && len(f.Tokens.Issuers) == 0 && f.Tokens.Introspection == nil {
		b.errf(path+".mode", "bound_token needs tokens.issuers or tokens.introspection")
	}
	if r.Clients != nil {
		if len(r.Clients) == 0 {
			b.errf(path+".clients", "an empty list lets no client through: remove the route, or list clients")
		}
		rt.clients = make(map[string]struct{}, len(r.Clients))
		for j, id := range r.Clients {
			if _, ok := c.byID[id]; !ok {
				b.errf(fmt.Sprintf("%s.clients[%d]", path, j), "%q is not a registered client_id", id)
			}
			rt.clients[id] = struct{}{}
		}
	}
	return rt, len(b.errs) == nerr
}

// shadowedRoutes warns about a route whose path_prefix ends in '/' when the bare path (the
// prefix without that '/') falls to another route: routes "/api/admin/" then "/api/" leave
// "/api/admin", "/api/admin?x" and "/api/admin.json" to the broader one, which is rarely meant.
// path_separated_prefix "/api/admin" covers the bare path and its subtree.
func shadowedRoutes(fr []fileRoute, rts []route) []string {
	if len(fr) != len(rts) {
		return nil // the routes did not compile: errors come first
	}
	var out []string
	for i, rt := range rts {
		if rt.separated || len(rt.prefix) < 2 || !strings.HasSuffix(rt.prefix, "/") {
			continue
		}
		bare := strings.TrimSuffix(rt.prefix, "/")
		for j := range rts {
			o := &rts[j]
			h := rt.host
			if h == "" {
				h = o.host
			}
			if j == i || !o.matches(h, bare) {
				continue
			}
			out = append(out, fmt.Sprintf("routes[%d].path_prefix: %q does not cover %q, which falls to routes[%d] (%s); path_separated_prefix: %s covers the path and everything below it",
				i, rt.prefix, bare, j, o.describe(), bare))
			break
		}
	}
	return out
}

func (rt *route) describe() string {
	kind := "path_prefix"
	if rt.separated {
		kind = "path_separated_prefix"
	}
	return fmt.Sprintf("%s %q, mode %s", kind, rt.prefix, rt.mode)
}

// hasControl reports whether s holds a control character (Unicode Cc: C0, DEL, C1), which
// has no place in a value certbind puts into an upstream header.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}
