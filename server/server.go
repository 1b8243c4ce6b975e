package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
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

// Server is one certbind: the engine and its reloader, the gRPC, HTTP and admin listeners,
// health and metrics. Build it with New, run it once with Run.
type Server struct {
	c       Config
	log     logrus.FieldLogger
	engine  *policy.Engine
	metrics *metrics.Metrics
	health  *health.Server
	reload  *reload.Reloader
	tls     *tls.Config // nil: plain listeners
	grpc    *grpc.Server
	grpcLis net.Listener
	https   []httpListener // the HTTP endpoint and the admin listener, those that are on
	addrs   Addrs
	ran     atomic.Bool
}

// httpListener is an HTTP server with the listener it serves.
type httpListener struct {
	srv *http.Server
	lis net.Listener
}

// Addrs are the addresses the listeners are bound to; nil for a listener that is off.
type Addrs struct {
	GRPC, HTTP, Admin net.Addr
}

// New builds every component from c: it loads the configuration (unless WaitForConfig, an
// invalid one fails New with ErrInvalid), reads the TLS files and opens the listeners. Nothing
// is served until Run. When New fails, it closes the listeners it was given.
func New(c Config) (*Server, error) {
	s, err := build(c)
	if err != nil {
		for _, e := range []Endpoint{c.GRPC, c.HTTP, c.Admin} {
			if e.Listener != nil {
				e.Listener.Close()
			}
		}
		return nil, err
	}
	return s, nil
}

func build(c Config) (*Server, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	if c.TLS.Log == nil {
		c.TLS.Log = log
	}
	s := &Server{c: c, log: log, engine: policy.NewEngine(policy.EngineConfig{}), metrics: metrics.New(), health: health.NewServer()}
	s.setServing(false)
	load := policy.LoadOptions{Observer: observer{log, s.metrics}}
	var checks extauthz.Tracing
	if c.Tracing != nil && c.Tracing.Enabled {
		load.Transport = c.Tracing.Transport
		checks = extauthz.Tracing{Tracer: c.Tracing.Tracer, Propagator: c.Tracing.Propagator}
	}
	s.reload = reload.New(reload.Config{Path: c.ConfigPath, Engine: s.engine, Load: load, OnLoad: s.onLoad})
	if err := s.reload.Load(); err != nil && !c.WaitForConfig {
		return nil, invalidf("%s: %w", c.ConfigPath, err)
	}
	if c.TLS.Cert != "" {
		tc, err := listener.ServerTLS(c.TLS)
		if err != nil {
			return nil, invalid{err}
		}
		s.tls = tc
	}
	// The decision log only when there is somewhere to write it.
	authz := extauthz.New(extauthz.Config{Engine: s.engine, Logger: c.Logger, Observer: s.metrics, Tracing: checks})
	// Checks run on a pool of long-lived goroutines (gRPC starts a new one only when all are
	// busy): a check's stack (reading the request, parsing certificates) then grows once per
	// worker rather than once per request, about 5% of a cold check's CPU. A check waits for its
	// request message on its goroutine, so the pool is sized for the checks in flight (Envoy
	// keeps many streams open per connection), not for the CPUs.
	opts := []grpc.ServerOption{grpc.NumStreamWorkers(uint32(streamWorkersPerCPU * runtime.GOMAXPROCS(0)))}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	s.grpc = grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s.grpc, authz)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if err := s.open(authz); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// streamWorkersPerCPU sizes the gRPC stream worker pool.
const streamWorkersPerCPU = 32

// Addrs reports where the listeners are bound, so an Addr with port 0 can be dialled.
func (s *Server) Addrs() Addrs { return s.addrs }

// Close releases the listeners of a Server that will not Run. Run closes them itself.
func (s *Server) Close() {
	if s.grpcLis != nil {
		s.grpcLis.Close()
	}
	for _, h := range s.https {
		h.lis.Close()
	}
}

func (s *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
}

// ready reports whether a configuration is in force.
func (s *Server) ready() bool { return s.engine.Config() != nil }

// Run serves every listener and keeps the configuration current until ctx ends; then it stops
// accepting, marks itself not serving, and lets in-flight checks finish within DrainTimeout.
// It returns nil after a drain, or the error that stopped the gRPC listener. Run once.
func (s *Server) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return errors.New("server: Run called twice")
	}
	rctx, stopReload := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() {
		if err := s.reload.Run(rctx, s.c.Reload); err != nil {
			s.log.WithError(err).Error("configuration watcher stopped: file changes are no longer noticed")
		}
	})
	defer func() { stopReload(); bg.Wait() }()
	for _, h := range s.https {
		bg.Go(func() {
			if err := h.srv.Serve(h.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.WithError(err).Error("HTTP listener stopped")
			}
		})
	}
	s.log.WithFields(logrus.Fields{"grpc_addr": addrString(s.addrs.GRPC), "http_addr": addrString(s.addrs.HTTP),
		"admin_addr": addrString(s.addrs.Admin), "tls": s.tls != nil, "caller_allow_list": s.c.TLS.AllowedCallers != ""}).Info("certbind serving")
	return s.serveUntilDone(ctx)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// serveUntilDone serves gRPC until ctx ends (or gRPC fails), then drains every listener.
func (s *Server) serveUntilDone(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	var err error
	select {
	case err = <-errc:
		s.log.WithError(err).Error("gRPC listener stopped")
		errc <- err
	case <-ctx.Done():
	}
	s.drain()
	s.flushTraces()
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// flushTraces exports the spans not yet sent, within DrainTimeout (at least a second).
func (s *Server) flushTraces() {
	if s.c.Tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(s.c.DrainTimeout, time.Second))
	defer cancel()
	if err := s.c.Tracing.Shutdown(ctx); err != nil {
		s.log.WithError(err).Warn("tracing: spans not flushed")
	}
}

// drain stops accepting on every listener and waits up to DrainTimeout for in-flight checks,
// then closes what is left.
func (s *Server) drain() {
	s.log.Info("shutting down: draining in-flight checks")
	s.setServing(false)
	dctx, cancel := context.WithTimeout(context.Background(), s.c.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range s.https {
		wg.Go(func() {
			if h.srv.Shutdown(dctx) != nil {
				h.srv.Close()
			}
		})
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-dctx.Done():
		s.log.Warn("drain deadline passed; closing remaining connections")
		s.grpc.Stop()
		<-done
	}
	wg.Wait()
}
