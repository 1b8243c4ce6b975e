package envoysim

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/certbind/certbind/envoy"
)

// forward is the router: the request as the filters left it (pseudo-headers, headers, body)
// goes to the route's cluster over HTTP/1.1.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *stream, rt envoy.Route, rb requestBody) {
	ctx, cancel := context.WithTimeout(withStream(r.Context(), st), routeTimeout)
	defer cancel()
	out := r.WithContext(ctx)
	out.Body = rb.upstreamBody(r)
	st.header.Set("X-Envoy-Expected-Rq-Timeout-Ms", strconv.FormatInt(routeTimeout.Milliseconds(), 10))
	st.upstreamCluster = rt.Cluster
	p.reverseProxy.ServeHTTP(w, out)
}

func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext, // connect_timeout: 1s
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       time.Minute,
		DisableCompression:    true, // Envoy neither asks for nor undoes gzip
		ResponseHeaderTimeout: routeTimeout,
	}
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := streamFrom(pr.In.Context())
			up := p.upstreams[st.upstreamCluster]
			u := *up
			path, query := splitQuery(st.path)
			u.Path, u.RawPath, u.Opaque = "", "", path
			if strings.HasPrefix(path, "//") {
				// An origin-form target starting with "//" cannot be expressed in a url.URL;
				// send the absolute form instead.
				u.Opaque = "//" + up.Host + path
			}
			u.RawQuery = strings.TrimPrefix(query, "?")
			u.ForceQuery = query == "?"
			pr.Out.URL = &u
			pr.Out.Host = st.authority
			pr.Out.Method = st.method
			// Exactly the headers Envoy sends (ReverseProxy's own X-Forwarded-* handling is
			// replaced by the connection manager's).
			pr.Out.Header = st.header.Clone()
			st.upstreamStart = time.Now()
		},
		ModifyResponse: func(resp *http.Response) error {
			st := streamFrom(resp.Request.Context())
			resp.Header.Set("X-Envoy-Upstream-Service-Time", strconv.FormatInt(time.Since(st.upstreamStart).Milliseconds(), 10))
			for _, m := range st.respMutations {
				m.apply(resp.Header)
			}
			// server_header_transformation OVERWRITE (the default).
			resp.Header.Set("Server", "envoy")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := streamFrom(r.Context())
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				p.localReply(w, st, http.StatusGatewayTimeout, "upstream request timeout", nil)
			case errors.Is(err, context.Canceled):
				// The client went away.
			default:
				p.localReply(w, st, http.StatusServiceUnavailable,
					"upstream connect error or disconnect/reset before headers. reset reason: connection failure", nil)
			}
		},
		ErrorLog: log.New(debugWriter{p.log}, "", 0),
	}
}
