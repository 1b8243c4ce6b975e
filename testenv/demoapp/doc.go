// Package demoapp is the upstream of certbind's test bed and demo: a minimal OAuth 2.0
// authorization server that issues certificate-bound access tokens (RFC 8705 section 3, RFC
// 9068), and an API that echoes what it receives.
//
// NewAS serves
//
//	POST /oauth2/token                        client_credentials grant, JWT access tokens bound by cnf x5t#S256
//	GET  /.well-known/jwks.json               the signing key (RFC 7517)
//	GET  /.well-known/oauth-authorization-server  metadata (RFC 8414, RFC 8705 section 3.3)
//
// NewAPI answers every request with an Echo of its method, path and headers as JSON, and
// /healthz with "ok".
//
// Trust assumptions: the token endpoint performs no client authentication of its own. It
// trusts the headers certbind sets on allow: x-certbind-client-id (the authenticated
// client_id) and client-cert (RFC 9440: the certificate it authenticated with, from which the
// token's x5t#S256 is computed). That is safe only when the endpoint is reachable solely through
// Envoy with certbind in client_auth mode on this route, because certbind overwrites or removes
// client-sent copies of these headers. Exposed any other way, anyone can obtain a token for any
// client by sending the headers. The API likewise trusts nothing and decides nothing: what it
// echoes shows what certbind let through.
//
//	as := demoapp.NewAS(demoapp.ASConfig{Issuer: "https://as.certbind.test",
//		Audience: "https://api.certbind.test", Key: key, KeyID: "as-1"})
//	http.ListenAndServe(":8080", as)
package demoapp
