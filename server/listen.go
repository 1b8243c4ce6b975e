package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/extauthz/listener"
)

// open opens the listeners that are on and builds their HTTP servers. On error, what it
// opened is left in s for Close.
func (s *Server) open(authz *extauthz.Server) error {
	var err error
	if s.grpcLis, err = endpoint(s.c.GRPC); err != nil {
		return fmt.Errorf("server: gRPC listener: %w", err)
	}
	s.addrs.GRPC = s.grpcLis.Addr()
	if s.c.HTTP.enabled() {
		l, err := endpoint(s.c.HTTP)
		if err != nil {
			return fmt.Errorf("server: HTTP listener: %w", err)
		}
		s.addrs.HTTP = l.Addr()
		// Below TLS: connections still in their handshake count towards the limit.
		l = listener.Limit(l, s.c.HTTPLimits.MaxConns)
		if s.tls != nil {
			l = tls.NewListener(l, s.tls)
		}
		s.https = append(s.https, httpListener{httpAuthzServer(extauthz.NewHTTPHandler(authz), s.c.HTTPLimits), l})
	}
	if s.c.Admin.enabled() {
		l, err := endpoint(s.c.Admin)
		if err != nil {
			return fmt.Errorf("server: admin listener: %w", err)
		}
		s.addrs.Admin = l.Addr()
		s.https = append(s.https, httpListener{&http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: headerTimeout}, l})
	}
	return nil
}

func endpoint(e Endpoint) (net.Listener, error) {
	if e.Listener != nil {
		return e.Listener, nil
	}
	return listen(e.Addr)
}

// listen opens host:port or unix:/path (a stale socket file is replaced).
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	}
	return net.Listen("tcp", addr)
}

// headerTimeout bounds the arrival of a request's headers on the HTTP listeners.
const headerTimeout = 5 * time.Second

// httpAuthzServer serves the HTTP authorization endpoint with a deadline on every phase of a
// connection: a caller that sends headers announcing a body and then stalls, never reads the
// answer, or idles on a kept-alive connection is closed instead of holding it.
func httpAuthzServer(h http.Handler, lim HTTPLimits) *http.Server {
	hdr := headerTimeout
	if lim.ReadTimeout > 0 {
		hdr = min(hdr, lim.ReadTimeout)
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: hdr, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout}
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready() {
			http.Error(w, "no valid configuration loaded", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	if s.c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
