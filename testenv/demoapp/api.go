package demoapp

import (
	"encoding/json"
	"net/http"
	"strings"
)

// PathHealth is the API's health check: 200 "ok".
const PathHealth = "/healthz"

// Echo is the API's answer to every request other than PathHealth.
type Echo struct {
	Method string `json:"method"`
	// Path is the request target as received: path and query.
	Path string `json:"path"`
	// Headers maps lower-case names to values; repeated headers are joined with ", " (RFC 9110
	// section 5.3). The Host header is included.
	Headers map[string]string `json:"headers"`
}

// NewAPI returns the demo API: it echoes every request as JSON so that a test, or a person
// running the demo, sees exactly which headers certbind let through and which it set.
func NewAPI() http.Handler {
	// Not a ServeMux: it would redirect unclean paths instead of echoing them.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathHealth {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(echoOf(r))
	})
}

func echoOf(r *http.Request) Echo {
	e := Echo{Method: r.Method, Path: r.RequestURI, Headers: make(map[string]string, len(r.Header)+1)}
	if e.Path == "" { // a request built for a client, not read by a server
		e.Path = r.URL.RequestURI()
	}
	for name, vals := range r.Header {
		e.Headers[strings.ToLower(name)] = strings.Join(vals, ", ")
	}
	if r.Host != "" {
		e.Headers["host"] = r.Host
	}
	return e
}
