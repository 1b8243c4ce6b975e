package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"github.com/certbind/certbind/cmd/internal/exit"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/extauthz/metrics"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/reload"
)

type serveFlags struct {
	config         string
	grpcAddr       string
	httpAddr       string
	adminAddr      string
	logFormat      string
	logLevel       string
	tlsCert        string
	tlsKey         string
	tlsClientCA    string
	allowedCallers string
	waitForConfig  bool
	pprof          bool
	gcPercent      int
	memoryLimit    int64
	drain          time.Duration
	http           httpLimits
}

// httpLimits bound the HTTP authorization endpoint's connections, so callers that stall
// cannot hold them open.
type httpLimits struct {
	readTimeout, writeTimeout, idleTimeout time.Duration
	maxConns                               int
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file (required)")
	fs.StringVar(&f.grpcAddr, "grpc-addr", ":9191", "gRPC listen address for Envoy's ext_authz: host:port, or unix:/path/to.sock")
	fs.StringVar(&f.httpAddr, "http-addr", "", "HTTP authorization endpoint (Envoy http_service, nginx auth_request): host:port or unix:/path; off when empty")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "admin listener with /healthz, /readyz and /metrics; off when empty")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve the gRPC and HTTP authorization listeners over TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key for --tls-cert (PEM)")
	fs.StringVar(&f.tlsClientCA, "tls-client-ca", "", "require callers to present a certificate from this CA (PEM)")
	fs.StringVar(&f.allowedCallers, "allowed-callers", "", "with --tls-client-ca: comma-separated URI SANs (compared exactly) or DNS SANs (any case), e.g. spiffe://example.org/envoy,envoy.example.org: the only callers accepted")
	fs.BoolVar(&f.waitForConfig, "wait-for-config", false, "start even when the configuration is invalid: not ready (health NOT_SERVING) until a valid one is written")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go profiling at /debug/pprof/ on the admin listener (exposes internals: keep the admin listener private)")
	fs.IntVar(&f.gcPercent, "gc-percent", 200, "Go garbage collector target (GOGC) unless the GOGC environment variable is set: certbind's live heap is small and bounded by its caches, so fewer collections save CPU on every check")
	fs.Int64Var(&f.memoryLimit, "memory-limit-mb", 128, "soft memory limit (GOMEMLIMIT) in MiB unless GOMEMLIMIT is set; the collector works harder near it, keeping resident memory bounded; 0 for none")
	fs.DurationVar(&f.drain, "drain-timeout", 10*time.Second, "on shutdown, how long in-flight checks may take to finish")
	fs.DurationVar(&f.http.readTimeout, "http-read-timeout", 10*time.Second, "HTTP endpoint: the longest a whole request (headers and body) may take to arrive; 0 for none")
	fs.DurationVar(&f.http.writeTimeout, "http-write-timeout", 10*time.Second, "HTTP endpoint: the longest from the end of a request's headers until its answer is written, decision included (keep it above tokens.introspection.timeout); 0 for none")
	fs.DurationVar(&f.http.idleTimeout, "http-idle-timeout", 60*time.Second, "HTTP endpoint: how long a kept-alive connection may wait for its next request; 0 for --http-read-timeout")
	fs.IntVar(&f.http.maxConns, "http-max-conns", 1024, "HTTP endpoint: the most connections open at once; more callers wait in the listen backlog; 0 for no limit")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	if f.config == "" {
		return f, exit.Usage("serve: --config is required")
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return f, exit.Usage("serve: --tls-cert and --tls-key go together")
	}
	if f.tlsClientCA != "" && f.tlsCert == "" {
		return f, exit.Usage("serve: --tls-client-ca needs --tls-cert and --tls-key")
	}
	if f.allowedCallers != "" && f.tlsClientCA == "" {
		return f, exit.Usage("serve: --allowed-callers needs --tls-client-ca: callers are identified by their certificate")
	}
	if f.http.readTimeout < 0 || f.http.writeTimeout < 0 || f.http.idleTimeout < 0 || f.http.maxConns < 0 {
		return f, exit.Usage("serve: --http-read-timeout, --http-write-timeout, --http-idle-timeout and --http-max-conns cannot be negative")
	}
	return f, nil
}

func newLogger(format, level string, out io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.Out = out
	switch format {
	case "json":
		l.Formatter = jsonFormatter{}
	case "text":
		l.Formatter = &logrus.TextFormatter{FullTimestamp: true}
	default:
		return nil, exit.Usage("--log-format %q: want json or text", format)
	}
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, exit.Usage("--log-level: %v", err)
	}
	l.Level = lv
	return l, nil
}

func loadConfig(path string, log logrus.FieldLogger) (*policy.Config, error) {
	cfg, err := policy.LoadConfig(path, loadOptions(log, nil))
	if err != nil {
		return nil, &exit.Error{Code: 2, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return cfg, nil
}

func loadOptions(log logrus.FieldLogger, m *metrics.Metrics) policy.LoadOptions {
	var onCache func(cache, event string)
	if m != nil {
		onCache = m.ObserveCache
	}
	onRevocation := func(kind, url string, err error) {
		if m != nil {
			m.ObserveFetch(kind, err)
		}
		if log != nil && err != nil {
			log.WithFields(logrus.Fields{"kind": kind, "url": url}).WithError(err).Warn("revocation fetch failed")
		}
	}
	onIntrospection := func(err error) {
		if m != nil {
			m.ObserveFetch("introspection", err)
		}
		if log != nil && err != nil {
			log.WithError(err).Warn("introspection failed; the token is refused (fail closed)")
		}
	}
	return policy.LoadOptions{OnCache: onCache, OnRevocationFetch: onRevocation, OnIntrospection: onIntrospection, OnJWKSFetch: func(uri string, err error) {
		if m != nil {
			m.ObserveFetch("jwks", err)
		}
		if log == nil {
			return
		}
		if err != nil {
			log.WithField("jwks_uri", uri).WithError(err).Warn("jwks fetch failed; keeping the last good key set")
		} else {
			log.WithField("jwks_uri", uri).Debug("jwks fetched")
		}
	}, OnJWKSSkip: func(uri string, skipped []string) {
		if log != nil {
			log.WithField("jwks_uri", uri).WithField("skipped", skipped).Warn("jwks keys of an unsupported type skipped; tokens signed with them are refused")
		}
	}}
}

// server is one running certbind: listeners, engine, reloader.
type server struct {
	f       serveFlags
	log     *logrus.Logger
	engine  *policy.Engine
	metrics *metrics.Metrics
	health  *health.Server
	grpc    *grpc.Server
	https   []*http.Server
	reload  *reload.Reloader
	ready   func() bool
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	out := newBufferedLog(stderr, flushEvery)
	defer out.Close()
	log, err := newLogger(f.logFormat, f.logLevel, out)
	if err != nil {
		return err
	}
	s, err := newServer(f, log)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// tuneRuntime applies the collector settings unless the environment already chose them.
func tuneRuntime(f serveFlags) {
	if os.Getenv("GOGC") == "" && f.gcPercent > 0 {
		debug.SetGCPercent(f.gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && f.memoryLimit > 0 {
		debug.SetMemoryLimit(f.memoryLimit << 20)
	}
}

func newServer(f serveFlags, log *logrus.Logger) (*server, error) {
	tuneRuntime(f)
	s := &server{f: f, log: log, engine: policy.NewEngine(policy.EngineConfig{}), metrics: metrics.New(), health: health.NewServer()}
	s.ready = func() bool { return s.engine.Config() != nil }
	s.setServing(false)
	s.reload = reload.New(reload.Config{
		Path: f.config, Engine: s.engine, Load: loadOptions(log, s.metrics),
		OnLoad: func(cfg *policy.Config, err error) {
			s.metrics.ObserveReload(cfg, err, time.Now())
			if err != nil {
				log.WithError(err).WithField("config", f.config).Error("configuration not loaded; the previous one stays in force")
				return
			}
			log.WithFields(logrus.Fields{"config": f.config, "clients": len(cfg.Clients())}).Info("configuration loaded")
			for _, w := range cfg.Warnings() {
				log.WithField("config", f.config).Warn(w)
			}
			s.setServing(true)
		},
	})
	if err := s.reload.Load(); err != nil && !f.waitForConfig {
		return nil, &exit.Error{Code: 2, Err: fmt.Errorf("%s: %w", f.config, err)}
	}
	return s, nil
}

func (s *server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
}

func (s *server) run(ctx context.Context) error {
	var tlsConfig *tls.Config
	if s.f.tlsCert != "" {
		var err error
		if tlsConfig, err = serverTLS(s.f, s.log); err != nil {
			return &exit.Error{Code: 2, Err: err}
		}
	}
	authz := extauthz.New(extauthz.Config{Engine: s.engine, Logger: s.log, Observer: s.metrics})
	var opts []grpc.ServerOption
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	s.grpc = grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s.grpc, authz)
	healthpb.RegisterHealthServer(s.grpc, s.health)

	lis, err := listen(s.f.grpcAddr)
	if err != nil {
		return err
	}
	var listeners []net.Listener
	closeAll := func() {
		lis.Close()
		for _, l := range listeners {
			l.Close()
		}
	}
	if s.f.httpAddr != "" {
		hl, err := listen(s.f.httpAddr)
		if err != nil {
			closeAll()
			return err
		}
		// Below TLS: connections still in their handshake count towards the limit.
		hl = listener.Limit(hl, s.f.http.maxConns)
		if tlsConfig != nil {
			hl = tls.NewListener(hl, tlsConfig)
		}
		listeners = append(listeners, hl)
		s.https = append(s.https, httpAuthzServer(extauthz.NewHTTPHandler(authz), s.f.http))
	}
	if s.f.adminAddr != "" {
		al, err := listen(s.f.adminAddr)
		if err != nil {
			closeAll()
			return err
		}
		listeners = append(listeners, al)
		s.https = append(s.https, &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: headerTimeout})
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	trigger := make(chan struct{}, 1)
	rctx, stopReload := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-rctx.Done():
				return
			case <-hup:
				s.log.Info("SIGHUP: reloading the configuration")
				select {
				case trigger <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		if err := s.reload.Run(rctx, trigger); err != nil {
			s.log.WithError(err).Error("configuration watcher stopped; SIGHUP still reloads")
		}
	}()
	defer func() { stopReload(); wg.Wait() }()

	for i, hs := range s.https {
		go func(hs *http.Server, l net.Listener) {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.WithError(err).Error("HTTP listener stopped")
			}
		}(hs, listeners[i])
	}
	s.log.WithFields(logrus.Fields{"grpc_addr": lis.Addr().String(), "http_addr": s.f.httpAddr, "admin_addr": s.f.adminAddr,
		"tls": tlsConfig != nil, "caller_allow_list": s.f.allowedCallers != ""}).Info("certbind serving")
	return s.serveUntilDone(ctx, lis)
}

// serveUntilDone serves gRPC until ctx ends, then stops accepting and lets in-flight checks
// finish within the drain timeout.
func (s *server) serveUntilDone(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining in-flight checks")
	s.setServing(false)
	dctx, cancel := context.WithTimeout(context.Background(), s.f.drain)
	defer cancel()
	var wg sync.WaitGroup
	for _, hs := range s.https {
		wg.Add(1)
		go func(hs *http.Server) { defer wg.Done(); hs.Shutdown(dctx) }(hs)
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-dctx.Done():
		s.log.Warn("drain deadline passed; closing remaining connections")
		s.grpc.Stop()
	}
	wg.Wait()
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// headerTimeout bounds the arrival of a request's headers on the HTTP listeners.
const headerTimeout = 5 * time.Second

// httpAuthzServer serves the HTTP authorization endpoint with a deadline on every phase of a
// connection: a caller that sends headers announcing a body and then stalls, never reads the
// answer, or idles on a kept-alive connection is closed instead of holding it.
func httpAuthzServer(h http.Handler, lim httpLimits) *http.Server {
	hdr := headerTimeout
	if lim.readTimeout > 0 {
		hdr = min(hdr, lim.readTimeout)
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: hdr, ReadTimeout: lim.readTimeout,
		WriteTimeout: lim.writeTimeout, IdleTimeout: lim.idleTimeout}
}

func (s *server) adminHandler() http.Handler {
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
	if s.f.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
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

// serverTLS builds the listeners' TLS configuration from the flags (extauthz/listener).
func serverTLS(f serveFlags, log logrus.FieldLogger) (*tls.Config, error) {
	return listener.ServerTLS(listener.Config{Cert: f.tlsCert, Key: f.tlsKey, ClientCA: f.tlsClientCA,
		AllowedCallers: f.allowedCallers, Recheck: tlsRecheck, Log: log})
}

var tlsRecheck = 10 * time.Second // a variable for tests
