package policy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
)

// Request is the HTTP request being authorized, as the proxy describes it.
type Request struct {
	Method  string
	Host    string
	Path    string            // as received: path and query, not decoded
	Headers map[string]string // lower-case names; repeated headers joined with ","; read-only
	Body    []byte            // what the proxy forwarded (Envoy with_request_body), possibly nothing
	// BodyTruncated is true when the proxy forwarded only part of the body
	// (Envoy x-envoy-auth-partial-body: true).
	BodyTruncated bool
}

// errClientIDConflict and errRequestMalformed separate the two ways reading client_id fails.
var (
	errClientIDConflict = errors.New("conflicting client_id values")
	errRequestMalformed = errors.New("malformed request")
)

// clientID finds the request's client_id in the places RFC 6749 allows: the form body (section
// 2.3.1, 3.2), the query, and the HTTP Basic user name (section 2.3.1, form-urlencoded). All
// occurrences must agree; a client_id repeated with the same value is accepted, two different
// values are a conflict (RFC 6749 section 3.2: parameters must not be included more than once,
// and an attacker who can add one must not choose which is used).
func clientID(r Request) (string, error) {
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
			return "", fmt.Errorf("%w: the proxy forwarded a truncated body", errRequestMalformed)
		}
		ct := r.Headers["content-type"]
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return "", fmt.Errorf("%w: body of content-type %q, want application/x-www-form-urlencoded", errRequestMalformed, ct)
		}
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return "", fmt.Errorf("%w: form body: %v", errRequestMalformed, err)
		}
		add("body", form["client_id"]...)
	}
	if _, q, ok := strings.Cut(r.Path, "?"); ok {
		query, err := url.ParseQuery(q)
		if err != nil {
			return "", fmt.Errorf("%w: query: %v", errRequestMalformed, err)
		}
		add("query", query["client_id"]...)
	}
	if auth, ok := r.Headers["authorization"]; ok {
		scheme, cred, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Basic") {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
			if err != nil {
				return "", fmt.Errorf("%w: Basic credentials: %v", errRequestMalformed, err)
			}
			user, _, ok := strings.Cut(string(raw), ":")
			if !ok {
				return "", fmt.Errorf("%w: Basic credentials without ':'", errRequestMalformed)
			}
			// RFC 6749 section 2.3.1: the user name is form-urlencoded.
			id, err := url.QueryUnescape(user)
			if err != nil {
				return "", fmt.Errorf("%w: Basic user name: %v", errRequestMalformed, err)
			}
			add("basic", id)
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	for i := 1; i < len(found); i++ {
		if found[i] != found[0] {
			return "", fmt.Errorf("%w: %s and %s differ", errClientIDConflict, where[0], where[i])
		}
	}
	if found[0] == "" {
		return "", fmt.Errorf("%w: empty client_id", errRequestMalformed)
	}
	return found[0], nil
}
