package policy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"net/url"
	"strings"
)

// Request is the HTTP request being authorized, as the proxy describes it.
type Request struct {
	Method string
	// Scheme is the URI scheme the client used ("https", "http"), from the proxy; a DPoP
	// proof's htu is compared with Scheme://Authority Path.
	Scheme string
	Host   string // the authority as the proxy routes it (Envoy's :authority, nginx's $host)
	// Authority is the authority the client sent, port included, when the proxy says it
	// apart from Host (nginx's $http_host); "" means Host.
	Authority string
	Path      string            // as received: path and query, not decoded
	Headers   map[string]string // lower-case names; repeated headers joined with ","; read-only
	Body      []byte            // what the proxy forwarded (Envoy with_request_body), possibly nothing
	// BodyTruncated is true when the proxy forwarded only part of the body
	// (Envoy x-envoy-auth-partial-body: true).
	BodyTruncated bool
}

// uri is the request's URI as the client used it, for a DPoP proof's htu: scheme, authority
// and path, without query (RFC 9449 section 4.3 step 9). An unknown scheme or authority is an
// error: a proof cannot be checked against a guess.
func (r Request) uri() (string, error) {
	authority := r.Authority
	if authority == "" {
		authority = r.Host
	}
	switch {
	case !strings.EqualFold(r.Scheme, "https") && !strings.EqualFold(r.Scheme, "http"):
		return "", fmt.Errorf("the proxy sent no request scheme (%.10q)", r.Scheme)
	case authority == "":
		return "", errors.New("the proxy sent no request authority")
	}
	path, _, _ := strings.Cut(r.Path, "?")
	path, _, _ = strings.Cut(path, "#")
	return r.Scheme + "://" + authority + path, nil
}

// malformed is a request_malformed deny with its cause.
func malformed(format string, args ...any) error {
	return Deny(ReasonRequestMalformed, fmt.Errorf(format, args...))
}

// clientID finds the request's client_id in the places RFC 6749 allows: the form body (section
// 2.3.1, 3.2), the query, and the HTTP Basic user name (section 2.3.1, form-urlencoded). All
// occurrences in the body and query must agree; a client_id repeated with the same value is
// accepted, two different values are a conflict (RFC 6749 section 3.2: parameters must not be
// included more than once, and an attacker who can add one must not choose which is used). The
// Basic user name stands alone: with a client_id parameter too the request uses two
// authentication methods. A form body over maxForm bytes is refused unread.
//
// Errors are denies (Deny) with their reason. No part of the Authorization value appears in
// one: errors reach the decision log.
func clientID(r Request, maxForm int) (string, error) {
	var found []string
	var where []string
	add := func(src string, vals ...string) {
		for _, v := range vals {
			found = append(found, v)
			where = append(where, src)
		}
	}
	if len(r.Body) > 0 || r.BodyTruncated {
		if r.BodyTruncated {
			return "", malformed("the proxy forwarded a truncated body")
		}
		if len(r.Body) > maxForm {
			return "", malformed("form body of %d bytes, over client_auth.max_form_bytes (%d)", len(r.Body), maxForm)
		}
		ct := r.Headers["content-type"]
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return "", malformed("body of content-type %.100q, want application/x-www-form-urlencoded", ct)
		}
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return "", malformed("form body: %v", err)
		}
		add("body", form["client_id"]...)
	}
	if _, q, ok := strings.Cut(r.Path, "?"); ok {
		query, err := url.ParseQuery(q)
		if err != nil {
			return "", malformed("query: %v", err)
		}
		add("query", query["client_id"]...)
	}
	for i := 1; i < len(found); i++ {
		if found[i] != found[0] {
			return "", Deny(ReasonClientIDConflict, fmt.Errorf("%s and %s differ", where[0], where[i]))
		}
	}
	if auth, ok := r.Headers["authorization"]; ok {
		scheme, cred, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Basic") {
			id, err := basicUser(cred)
			if err != nil {
				return "", err
			}
			if len(found) > 0 {
				if found[0] != id {
					return "", Deny(ReasonClientIDConflict, fmt.Errorf("%s and basic differ", where[0]))
				}
				// RFC 6749 section 2.3: one authentication method per request; Basic is
				// client_secret_basic (section 2.3.1).
				return "", Deny(ReasonClientAuthMultiple, fmt.Errorf("HTTP Basic credentials and client_id in the %s", where[0]))
			}
			add("basic", id)
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	if found[0] == "" {
		return "", malformed("empty client_id")
	}
	return found[0], nil
}

// basicUser is the user name of HTTP Basic credentials, form-urlencoded (RFC 6749 section
// 2.3.1). Its errors never quote the credentials.
func basicUser(cred string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", malformed("Basic credentials are not base64")
	}
	user, _, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", malformed("Basic credentials without ':'")
	}
	id, err := url.QueryUnescape(user)
	if err != nil {
		return "", malformed("Basic user name is not form-urlencoded")
	}
	return id, nil
}

// errHostMalformed marks an authority that is not host[:port].
var errHostMalformed = errors.New("malformed host")

// CanonicalHost is the host routes compare with: ASCII lower case, the port removed, and one
// trailing dot removed ("admin.example.org." is the same DNS name as "admin.example.org", and
// Envoy and nginx route both to the same place). An IPv6 literal keeps its brackets, in
// netip's canonical form. Anything that is not host[:port] is an error: a reg-name here is
// letters, digits, '-', '_' and non-empty dot-separated labels (no percent-encoding, which a
// proxy would not decode before routing but an upstream might). "" stays "": a request
// without a host matches only routes without one.
func CanonicalHost(authority string) (string, error) {
	if authority == "" {
		return "", nil
	}
	host, port := authority, ""
	if authority[0] == '[' {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: %.100q: unclosed '['", errHostMalformed, authority)
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" && port[0] != ':' {
			return "", fmt.Errorf("%w: %.100q: text after ']'", errHostMalformed, authority)
		}
	} else if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i:]
	}
	if port != "" {
		// RFC 3986 section 3.2.3: port = *DIGIT (may be empty).
		if len(port) > 6 || strings.Trim(port[1:], "0123456789") != "" {
			return "", fmt.Errorf("%w: %.100q: bad port", errHostMalformed, authority)
		}
	}
	if host != "" && host[0] == '[' {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%w: %.100q: bad IPv6 literal", errHostMalformed, authority)
		}
		return "[" + a.String() + "]", nil
	}
	return canonicalName(host, authority)
}

// canonicalName lower-cases a reg-name or IPv4 address and removes one trailing dot.
func canonicalName(host, authority string) (string, error) {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return "", fmt.Errorf("%w: %.100q: empty or too long", errHostMalformed, authority)
	}
	lower := true
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			lower = false
		case c == '.':
			if i == 0 || host[i-1] == '.' || i == len(host)-1 {
				return "", fmt.Errorf("%w: %.100q: empty label", errHostMalformed, authority)
			}
		default:
			return "", fmt.Errorf("%w: %.100q: character %q", errHostMalformed, authority, c)
		}
	}
	if !lower {
		host = strings.ToLower(host)
	}
	return host, nil
}
