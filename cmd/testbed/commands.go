package main

import (
	"context"
	"errors"
	"flag"
	"github.com/certbind/certbind/cmd/internal/exit"
	"log"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/testenv/demoapp"
	"github.com/certbind/certbind/testenv/testbed"
)

func runPKI(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write the PKI into (required; created if missing)")
	valid := fs.Duration("valid", 24*time.Hour, "validity of the certificates from now")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *out == "" {
		return exit.Usage("pki: --out is required")
	}
	if *valid <= 0 {
		return exit.Usage("pki: --valid %s: must be positive", *valid)
	}
	now := e.now()
	if err := testbed.GeneratePKI(*out, now, *valid); err != nil {
		return err
	}
	e.log.WithFields(logrus.Fields{"dir": *out, "files": len(testbed.Files()),
		"not_after": now.Add(*valid).UTC().Format(time.RFC3339)}).Info("test PKI written; private keys inside, never commit")
	return nil
}

func runAS(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("as", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	dir := fs.String("pki", "", "PKI directory written by 'testbed pki' (required; reads "+testbed.FileASKey+")")
	issuer := fs.String("issuer", testbed.Issuer, "issuer (iss) of the access tokens; base of the metadata URLs")
	audience := fs.String("audience", testbed.Audience, "audience (aud) of the access tokens")
	ttl := fs.Duration("token-ttl", demoapp.DefaultTokenTTL, "access token lifetime")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *dir == "" {
		return exit.Usage("as: --pki is required")
	}
	if *ttl <= 0 { // zero would mean ASConfig's default: refuse it on the command line
		return exit.Usage("as: --token-ttl %s: must be positive", *ttl)
	}
	key, err := testbed.LoadSigningKey(filepath.Join(*dir, testbed.FileASKey))
	if err != nil {
		return err
	}
	log := e.log.WithField("service", "as")
	cfg := demoapp.ASConfig{Issuer: *issuer, Audience: *audience, Key: key, KeyID: testbed.ASKeyID, TokenTTL: *ttl,
		Now: e.now, Log: log}
	if err := cfg.Validate(); err != nil {
		return exit.Usage("as: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	log.WithFields(logrus.Fields{"issuer": *issuer, "audience": *audience, "kid": testbed.ASKeyID}).
		Warn("the token endpoint trusts certbind's headers: expose it only through Envoy with certbind in client_auth mode")
	return serve(ctx, e, log, *addr, demoapp.NewAS(cfg))
}

func runAPI(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	return serve(ctx, e, e.log.WithField("service", "api"), *addr, demoapp.NewAPI())
}

// shutdownGrace is how long in-flight requests may take to finish after SIGTERM.
const shutdownGrace = 10 * time.Second

// serve serves h on addr until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, e *env, log *logrus.Entry, addr string, h http.Handler) error {
	lis, err := e.listen(addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           accessLog(log, h),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          newStdLogger(log),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	log.WithField("addr", lis.Addr().String()).Info("serving")
	if e.ready != nil {
		e.ready(lis.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	if err != nil {
		log.WithError(err).Warn("shutdown deadline passed; closing remaining connections")
		srv.Close()
	}
	return nil
}

// accessLog logs one line per request: never the query (RFC 6750 section 2.3 allows tokens
// there), the Authorization header or certificates.
func accessLog(log *logrus.Entry, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		log.WithFields(logrus.Fields{
			"method":      r.Method,
			"path":        r.URL.Path,
			"status":      sw.status,
			"duration_ms": float64(time.Since(start).Microseconds()) / 1000,
			"client_id":   r.Header.Get(demoapp.HeaderClientID),
			"request_id":  r.Header.Get("X-Request-Id"),
		}).Info("request")
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newStdLogger routes net/http's own messages (TLS and protocol errors) into the JSON log.
func newStdLogger(l *logrus.Entry) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ log *logrus.Entry }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
