package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

type serveFlags struct {
	config      string
	grpcAddr    string
	httpAddr    string
	logFormat   string
	logLevel    string
	tlsCert     string
	tlsKey      string
	tlsClientCA string
	drain       time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file (required)")
	fs.StringVar(&f.grpcAddr, "grpc-addr", ":9191", "gRPC listen address for Envoy's ext_authz")
	fs.StringVar(&f.httpAddr, "http-addr", "", "HTTP authorization endpoint (Envoy http_service, nginx auth_request); off when empty")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve gRPC over TLS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key for --tls-cert (PEM)")
	fs.StringVar(&f.tlsClientCA, "tls-client-ca", "", "require callers (Envoy) to present a certificate from this CA (PEM)")
	fs.DurationVar(&f.drain, "drain-timeout", 10*time.Second, "on shutdown, how long in-flight checks may take to finish")
	if err := fs.Parse(args); err != nil {
		return f, &exitError{code: 2}
	}
	if f.config == "" {
		return f, usageError("serve: --config is required")
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return f, usageError("serve: --tls-cert and --tls-key go together")
	}
	if f.tlsClientCA != "" && f.tlsCert == "" {
		return f, usageError("serve: --tls-client-ca needs --tls-cert and --tls-key")
	}
	return f, nil
}

func newLogger(format, level string, out io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.Out = out
	switch format {
	case "json":
		l.Formatter = &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
	case "text":
		l.Formatter = &logrus.TextFormatter{FullTimestamp: true}
	default:
		return nil, usageError("--log-format %q: want json or text", format)
	}
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, usageError("--log-level: %v", err)
	}
	l.Level = lv
	return l, nil
}

func loadConfig(path string, log logrus.FieldLogger) (*policy.Config, error) {
	cfg, err := policy.LoadConfig(path, policy.LoadOptions{
		OnJWKSFetch: func(uri string, err error) {
			if log == nil {
				return
			}
			if err != nil {
				log.WithField("jwks_uri", uri).WithError(err).Warn("jwks fetch failed; keeping the last good key set")
			} else {
				log.WithField("jwks_uri", uri).Debug("jwks fetched")
			}
		},
	})
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", path, err)}
	}
	return cfg, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f.config, log)
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	var tlsConfig *tls.Config
	if f.tlsCert != "" {
		tlsConfig, err = serverTLS(f)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	lis, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return err
	}
	engine := policy.NewEngine(policy.EngineConfig{Config: cfg})
	srv := extauthz.New(extauthz.Config{Engine: engine, Logger: log})
	gs := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(gs, srv)
	var hs *http.Server
	if f.httpAddr != "" {
		hl, err := net.Listen("tcp", f.httpAddr)
		if err != nil {
			lis.Close()
			return err
		}
		hs = &http.Server{Handler: extauthz.NewHTTPHandler(srv), ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsConfig}
		go func() {
			var err error
			if tlsConfig != nil {
				err = hs.ServeTLS(hl, "", "")
			} else {
				err = hs.Serve(hl)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.WithError(err).Error("HTTP authorization endpoint stopped")
			}
		}()
		log.WithField("http_addr", hl.Addr().String()).Info("HTTP authorization endpoint serving")
	}
	log.WithFields(logrus.Fields{"grpc_addr": lis.Addr().String(), "clients": len(cfg.Clients()), "tls": f.tlsCert != ""}).Info("certbind serving")
	err = serveUntilDone(ctx, gs, lis, f.drain, log)
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), f.drain)
		defer cancel()
		hs.Shutdown(sctx)
	}
	return err
}

// serveUntilDone serves until ctx ends, then stops accepting and lets in-flight checks finish
// within drain.
func serveUntilDone(ctx context.Context, gs *grpc.Server, lis net.Listener, drain time.Duration, log logrus.FieldLogger) error {
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight checks")
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		log.Warn("drain deadline passed; closing remaining connections")
		gs.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

func serverTLS(f serveFlags) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.tlsClientCA != "" {
		pem, err := os.ReadFile(f.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca: %s holds no PEM certificate", f.tlsClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
