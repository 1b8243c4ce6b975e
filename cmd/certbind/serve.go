package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/certbind/certbind/cmd/internal/exit"
	"github.com/certbind/certbind/tracing"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/server"
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
	http           server.HTTPLimits
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	lim := server.DefaultHTTPLimits()
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
	fs.IntVar(&f.gcPercent, "gc-percent", defaultGCPercent, "Go garbage collector target (GOGC) unless the GOGC environment variable is set: certbind's live heap is small and bounded by its caches, so fewer collections save CPU on every check")
	fs.Int64Var(&f.memoryLimit, "memory-limit-mb", 100, "soft memory limit (GOMEMLIMIT) in MiB unless GOMEMLIMIT is set; the collector works harder near it, keeping resident memory bounded; 0 for none")
	fs.DurationVar(&f.drain, "drain-timeout", server.DefaultDrainTimeout, "on shutdown, how long in-flight checks may take to finish")
	fs.DurationVar(&f.http.ReadTimeout, "http-read-timeout", lim.ReadTimeout, "HTTP endpoint: the longest a whole request (headers and body) may take to arrive; 0 for none")
	fs.DurationVar(&f.http.WriteTimeout, "http-write-timeout", lim.WriteTimeout, "HTTP endpoint: the longest from the end of a request's headers until its answer is written, decision included (keep it above tokens.introspection.timeout); 0 for none")
	fs.DurationVar(&f.http.IdleTimeout, "http-idle-timeout", lim.IdleTimeout, "HTTP endpoint: how long a kept-alive connection may wait for its next request; 0 for --http-read-timeout")
	fs.IntVar(&f.http.MaxConns, "http-max-conns", lim.MaxConns, "HTTP endpoint: the most connections open at once; more callers wait in the listen backlog; 0 for no limit")
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
	if f.http.ReadTimeout < 0 || f.http.WriteTimeout < 0 || f.http.IdleTimeout < 0 || f.http.MaxConns < 0 {
		return f, exit.Usage("serve: --http-read-timeout, --http-write-timeout, --http-idle-timeout and --http-max-conns cannot be negative")
	}
	if f.drain < 0 {
		return f, exit.Usage("serve: --drain-timeout cannot be negative")
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

// loadConfig loads a configuration for the offline commands (check, validate): nothing is
// fetched in the background, so there is nothing to log or count.
func loadConfig(path string, _ logrus.FieldLogger) (*policy.Config, error) {
	cfg, err := policy.LoadConfig(path, policy.LoadOptions{})
	if err != nil {
		return nil, &exit.Error{Code: 2, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return cfg, nil
}

// serve is certbind serve: package server, configured from the flags, until ctx ends.
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
	// go-redis (the DPoP replay store) prints its connection errors itself; certbind already
	// logs each failed call as a warning, so its own lines go to the debug level, formatted.
	redis.SetLogger(redisLogger{log})
	tuneRuntime(f)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr, err := tracing.Setup(ctx, buildVersion())
	if err != nil {
		return exit.Usage("%v", err)
	}
	cfg := serverConfig(f, log, reloadOnSIGHUP(ctx, log))
	cfg.Tracing = tr
	s, err := server.New(cfg)
	if errors.Is(err, server.ErrInvalid) {
		return &exit.Error{Code: 2, Err: err}
	}
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// serverConfig is what the flags ask of package server.
func serverConfig(f serveFlags, log logrus.FieldLogger, reload <-chan struct{}) server.Config {
	return server.Config{
		ConfigPath:    f.config,
		WaitForConfig: f.waitForConfig,
		Reload:        reload,
		GRPC:          server.Endpoint{Addr: f.grpcAddr},
		HTTP:          server.Endpoint{Addr: f.httpAddr},
		Admin:         server.Endpoint{Addr: f.adminAddr},
		TLS:           listener.Config{Cert: f.tlsCert, Key: f.tlsKey, ClientCA: f.tlsClientCA, AllowedCallers: f.allowedCallers},
		HTTPLimits:    f.http,
		DrainTimeout:  f.drain,
		Pprof:         f.pprof,
		Logger:        log,
	}
}

// reloadOnSIGHUP turns SIGHUP into reload requests until ctx ends.
func reloadOnSIGHUP(ctx context.Context, log logrus.FieldLogger) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the configuration")
				select {
				case reload <- struct{}{}:
				default: // one is already pending
				}
			}
		}
	}()
	return reload
}

// defaultGCPercent is --gc-percent's default; certbind validate collects at
// validateGCPercent under a soft limit of validateMemoryLimitMB.
const (
	defaultGCPercent      = 200
	validateGCPercent     = 150
	validateMemoryLimitMB = 140
)

// tuneRuntime applies the collector settings unless the environment already chose them.
func tuneRuntime(f serveFlags) {
	if os.Getenv("GOGC") == "" && f.gcPercent > 0 {
		debug.SetGCPercent(f.gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && f.memoryLimit > 0 {
		debug.SetMemoryLimit(f.memoryLimit << 20)
	}
}

// buildVersion is the main module's version as the go command recorded it ("(devel)" for a
// build from a checkout).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// redisLogger hands go-redis's log lines to certbind's logger at debug level.
type redisLogger struct{ log logrus.FieldLogger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.log.WithField("component", "redis").Debugf(format, v...)
}
