// Package extauthz adapts Envoy's external authorization API (envoy.service.auth.v3) and
// certbind's HTTP authorization endpoint to the policy core: a CheckRequest (or HTTP request) is
// read into a policy.Input, decided, and rendered into a CheckResponse (or HTTP response). It
// holds no decision logic of its own beyond reconciling where the client certificate comes from.
// Its settings (certificate sources, the XFCC parser's limits and element policy, the HTTP
// endpoint's headers) are compiled once per configuration generation, kept with that
// generation's certificate cache; the HTTP status, gRPC code and OAuth error of a deny come
// from the reason's class (policy.Class) and the mode.
//
// Certificate sources: attributes.source.certificate (Envoy include_peer_certificate: the leaf,
// which a client cannot forge) and x-forwarded-client-cert (the leaf and the chain the client
// sent, as written by Envoy's forward_client_cert_details). When both are present they must name
// the same certificate. XFCC is parsed strictly (package xfcc); identity always comes from the
// parsed certificate, never from the Subject, URI or DNS text.
//
// Responses: a decision — allow or deny — is always a CheckResponse with a nil error; denials
// carry the HTTP status, headers and body the client sees (OAuth error JSON, RFC 6750
// WWW-Authenticate). A gRPC error means certbind could not decide, so that Envoy's failure
// policy (failure_mode_allow: false) applies. Upstream headers are set with
// OVERWRITE_IF_EXISTS_OR_ADD and certbind's headers that a decision does not set are removed,
// so no client-sent copy reaches the upstream (Envoy's ext_authz filter, onComplete).
//
//	s := extauthz.New(extauthz.Config{Engine: engine, Logger: log})
//	authv3.RegisterAuthorizationServer(grpcServer, s)
//	http.Handle("/", extauthz.NewHTTPHandler(s))
package extauthz
