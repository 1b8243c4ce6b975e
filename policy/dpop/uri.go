package dpop

import (
	"fmt"
	"net/url"
	"strings"
)

// sameURI compares a proof's htu with the request's URI as RFC 9449 section 4.3 (step 9)
// asks: without query and fragment, after RFC 3986 section 6.2.2 and 6.2.3 normalization.
func sameURI(htu, uri string) error {
	a, err := normalizeURI(htu)
	if err != nil {
		return fail(KindURI, "htu: %v", err)
	}
	b, err := normalizeURI(uri)
	if err != nil {
		return fail(KindURI, "request URI: %v", err)
	}
	if a != b {
		return fail(KindURI, "htu %.200q is not the request's URI %.200q", a, b)
	}
	return nil
}

// normalizeURI is an absolute http(s) URI's scheme, authority and path in normal form: scheme
// and host in lower case, the scheme's default port dropped, an empty path as "/",
// percent-encodings in upper case and those of unreserved characters decoded. The query and
// fragment are dropped.
func normalizeURI(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URI")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", fmt.Errorf("not an absolute http(s) URI with a host")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + normalizePercent(path), nil
}

// normalizePercent writes percent-encodings in upper case and decodes those of unreserved
// characters (RFC 3986 section 6.2.2.2). url.Parse has already refused invalid encodings.
func normalizePercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) {
			b.WriteByte(p[i])
			continue
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(p[i+1:i+3]))
		}
		i += 2
	}
	return b.String()
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
