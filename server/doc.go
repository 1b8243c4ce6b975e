// Package server assembles one running certbind from a Config: the policy engine and the
// reloader that keeps its configuration current (package policy/reload: file changes and
// explicit requests), Envoy's ext_authz gRPC service with gRPC health, the HTTP authorization
// endpoint (Envoy http_service, nginx auth_request) with read, write and idle deadlines and a
// connection bound (extauthz/listener.Limit), the listeners' TLS with file reload and the
// caller allow-list (extauthz/listener), and the admin listener with /healthz, /readyz,
// /metrics (package extauthz/metrics) and optionally pprof. Run serves them together and,
// when its context ends, drains: not serving, no new connections, in-flight checks finish
// within the drain timeout.
//
// certbind serve is flag parsing around this package; the demo, the soak and the end-to-end
// tests (package testenv/stack) run the same assembly.
//
// Trust: only Envoy (or nginx) must be able to reach the gRPC and HTTP listeners, since
// whatever reaches them is believed about the client's certificate (the peer certificate and
// x-forwarded-client-cert): bind them to a private address or a unix socket, or require
// Envoy's certificate with TLS.ClientCA and TLS.AllowedCallers. The admin listener is plain
// HTTP and, with Pprof, exposes internals: keep it private. Until a valid configuration is in
// force the Server reports NOT_SERVING and answers every check with a gRPC error (Envoy's
// failure policy applies), never an allow.
//
//	s, err := server.New(server.Config{
//		ConfigPath:   "/etc/certbind/certbind.yaml",
//		GRPC:         server.Endpoint{Addr: ":9191"},
//		Admin:        server.Endpoint{Addr: "127.0.0.1:9901"},
//		HTTPLimits:   server.DefaultHTTPLimits(),
//		DrainTimeout: server.DefaultDrainTimeout,
//		Logger:       log,
//	})
//	if err != nil {
//		return err
//	}
//	return s.Run(ctx) // until ctx ends, then drains
package server
