package extauthz

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/certbind/certbind/policy"
)

// HTTPHandler is certbind's HTTP authorization endpoint, for Envoy's ext_authz http_service and
// nginx auth_request: the proxy forwards the request (or, for nginx, a subrequest carrying the
// original URI and method in headers) with the client certificate in a header it sets itself.
// 200 allows, with certbind's upstream headers on the response (for Envoy's
// allowed_upstream_headers or nginx auth_request_set); any other status denies, with the same
// status, headers and body the gRPC path sends.
//
// The certificate header is only as trustworthy as the proxy that sets it: the proxy must
// overwrite any client-sent copy (nginx proxy_set_header in the auth location does).
type HTTPHandler struct {
	s *Server
}

// NewHTTPHandler shares a Server's engine, logger and clock.
func NewHTTPHandler(s *Server) *HTTPHandler { return &HTTPHandler{s: s} }

func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.s.now()
	cfg := h.s.engine.Config()
	if cfg == nil {
		http.Error(w, "certbind: no configuration loaded", http.StatusServiceUnavailable)
		return
	}
	in := ReadHTTPInput(r, cfg.HTTPAuthz, cfg)
	d := h.s.engine.DecideWith(r.Context(), cfg, in)
	h.s.logDecision(d, in.Request.Headers["x-request-id"], h.s.now().Sub(start))
	rs := cfg.Response()
	if d.Allow {
		set, remove := Allowed(d, rs)
		for k, v := range set {
			w.Header().Set(k, v)
		}
		// Envoy's http_service removes the upstream headers named here (its counterpart of
		// headers_to_remove); nginx sets each header from the response, so an absent one is
		// sent empty, which nginx drops.
		if len(remove) > 0 {
			w.Header().Set("x-envoy-auth-headers-to-remove", strings.Join(remove, ","))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	den := Denial(d, rs)
	for k, v := range den.Headers {
		w.Header().Set(k, v)
	}
	// For proxies that keep the auth response's headers but not its body (nginx auth_request):
	// the reason, the OAuth error and its description, to rebuild the body from.
	w.Header().Set("x-certbind-reason", string(d.Reason))
	if den.OAuthError != "" {
		w.Header().Set("x-certbind-error", den.OAuthError)
		w.Header().Set("x-certbind-error-description", den.Description)
	}
	status := den.Status
	if cfg.HTTPAuthz.AuthRequestStatuses && status != http.StatusUnauthorized && status != http.StatusForbidden {
		w.Header().Set("x-certbind-status", strconv.Itoa(status))
		status = http.StatusForbidden
	}
	w.WriteHeader(status)
	io.WriteString(w, den.Body)
}
