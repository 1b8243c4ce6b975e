package envoysim

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/envoy"
)

// ServeHTTP handles one request the way Envoy's HTTP connection manager, ext_authz filter and
// router do for the summarized config. Served without TLS (r.TLS nil) it behaves like a
// plaintext listener: no peer certificate, XFCC per forward_client_cert_details.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := newStream(r)
	rec := &recorder{ResponseWriter: w}
	route, result := "", authzSkipped
	defer func() {
		// One line; the path without its query (it may carry a token), no headers.
		path, _ := splitQuery(st.path)
		p.log.WithFields(logrus.Fields{
			"request_id":  st.header.Get("X-Request-Id"),
			"method":      st.method,
			"path":        path,
			"route":       route,
			"authz":       string(result),
			"status":      rec.status,
			"duration_us": time.Since(st.start).Microseconds(),
		}).Info("request")
	}()

	// HCM: only relative paths are routed.
	if !strings.HasPrefix(st.path, "/") {
		p.localReply(rec, st, http.StatusNotFound, "", nil)
		return
	}
	np, act := p.paths.normalize(st.path)
	switch act {
	case pathReject:
		p.localReply(rec, st, http.StatusBadRequest, "", nil)
		return
	case pathRedirect:
		p.localReply(rec, st, http.StatusTemporaryRedirect, "", func(h http.Header) { h.Set("Location", np) })
		return
	}
	st.path = np
	// No upgrade_configs: an upgrade request fails to get a filter chain.
	if isUpgrade(st.header) {
		p.localReply(rec, st, http.StatusForbidden, "", nil)
		return
	}
	p.mutateRequestHeaders(st)

	i, ok := p.match(st.path)
	if !ok {
		// No route: ext_authz skips the check (getPerRouteFlags), the router answers 404.
		p.localReply(rec, st, http.StatusNotFound, "", nil)
		return
	}
	rt := p.s.Routes[i]
	route = routeName(rt)

	var rb requestBody
	if !rt.AuthzDisabled {
		var tooLarge bool
		var err error
		rb, tooLarge, err = bufferBody(r, rt)
		if err != nil {
			return // the client went away: Envoy resets the stream
		}
		if tooLarge {
			// The filter manager's buffer limit: 413, body "Payload Too Large".
			p.localReply(rec, st, http.StatusRequestEntityTooLarge, "Payload Too Large", nil)
			return
		}
		var proceed bool
		if proceed, result = p.check(r.Context(), rec, st, rt, rb); !proceed {
			return
		}
	}
	if rt.DirectResponseStatus != 0 {
		p.localReply(rec, st, int(rt.DirectResponseStatus), "", nil)
		return
	}
	p.forward(rec, r, st, rt, rb)
}

// match returns the first route whose path (exact) or prefix matches :path without its query,
// case-sensitively.
func (p *Proxy) match(path string) (int, bool) {
	path, _ = splitQuery(path)
	for i, r := range p.s.Routes {
		if r.Path != "" {
			if path == r.Path {
				return i, true
			}
			continue
		}
		if strings.HasPrefix(path, r.Prefix) {
			return i, true
		}
	}
	return 0, false
}

func routeName(r envoy.Route) string {
	if r.Path != "" {
		return "path:" + r.Path
	}
	return "prefix:" + r.Prefix
}

// localReply is Utility::sendLocalReply / encodeLocalReply: the status, the headers the caller
// sets, content-length and (when absent) content-type text/plain for a non-empty body; no
// content-type or content-length at all for an empty one; server: envoy.
func (p *Proxy) localReply(w http.ResponseWriter, st *stream, code int, body string, modify func(http.Header)) {
	h := http.Header{}
	if modify != nil {
		modify(h)
	}
	if body != "" && st.method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain")
		}
	} else {
		h.Del("Content-Length")
		h.Del("Content-Type")
		body = ""
	}
	h.Set("Server", "envoy")
	out := w.Header()
	for k, vs := range h {
		out[k] = vs
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// recorder keeps the status for the log line.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (used by httputil.ReverseProxy) flush.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeTimeout is the route's timeout (unset in our configs: Envoy's default 15s), also
// announced upstream as x-envoy-expected-rq-timeout-ms.
const routeTimeout = 15 * time.Second

func withStream(ctx context.Context, st *stream) context.Context {
	return context.WithValue(ctx, streamKey{}, st)
}
