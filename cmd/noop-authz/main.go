// Command noop-authz is the baseline of certbind's benchmark: an Envoy ext_authz v3 server that
// allows every request without looking at it, built with the same grpc-go and the same server
// options as certbind, so that certbind's cost can be stated as a ratio to the cost of gRPC
// itself (see testenv/bench).
//
//	noop-authz --grpc-addr 127.0.0.1:9191 [--http-addr 127.0.0.1:9192]
//
// It stops on SIGTERM or SIGINT, letting in-flight calls finish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certbind/certbind/testenv/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "noop-authz:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("noop-authz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	grpcAddr := fs.String("grpc-addr", ":9191", "gRPC listen address (ext_authz v3 and grpc.health.v1)")
	httpAddr := fs.String("http-addr", "", "HTTP listen address answering 200 to everything; off when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	noop := &bench.Noop{}
	// As certbind's serve: grpc.NewServer with no options (certbind adds only TLS credentials),
	// the authorization service and health.
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, noop)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)

	lis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	var hsrv *http.Server
	if *httpAddr != "" {
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			lis.Close()
			return err
		}
		hsrv = &http.Server{Handler: noop, ReadHeaderTimeout: 5 * time.Second}
		go hsrv.Serve(hl)
	}
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	fmt.Fprintf(stderr, "noop-authz: serving gRPC on %s, HTTP on %q\n", lis.Addr(), *httpAddr)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	hs.Shutdown()
	if hsrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hsrv.Shutdown(sctx)
		cancel()
	}
	gs.GracefulStop()
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	fmt.Fprintf(stderr, "noop-authz: stopped after %d checks\n", noop.Checks())
	return nil
}
