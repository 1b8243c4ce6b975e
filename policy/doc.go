// Package policy is certbind's core: it decides whether a request may pass, from plain inputs —
// the HTTP request as the proxy describes it, the client certificate already parsed, and the
// route's mode — against a compiled configuration. It imports no gRPC, no Envoy types and no
// logger; adapters (package extauthz) translate proxy messages into an Input and a Decision back.
//
// Three modes:
//   - client_auth (RFC 8705 section 2): the request's client_id must be bound to the certificate,
//     by chain validation to a trust anchor plus one registered name (tls_client_auth), or by a
//     pinned certificate (self_signed_tls_client_auth).
//   - bound_token (RFC 8705 section 3, RFC 9449): the access token must be valid and bound as
//     the route or issuer requires, and every binding it carries must hold on this request: cnf
//     x5t#S256 with the certificate presented, cnf jkt with a DPoP proof by that key (package
//     dpop checks the proof; bound.go, dpopconfig.go).
//   - identity: the certificate must belong to exactly one registered client.
//
// Trust assumptions: the certificate handed in an Input came from the TLS connection (Envoy's
// peer certificate, or XFCC written by a proxy that overwrites client-sent values); the proxy
// verified possession of its private key. Everything else — the chain, names, tokens — is
// verified here. Every failure is a deny with a typed Reason; nothing fails open. Helpers return
// a deny as an error (Deny: an *Error carrying the Reason and the internal cause); each reason's
// class and client-facing description are in one table (reason.go), from which the adapter
// derives statuses.
//
// Chains are verified by crypto/x509; certbind adds directoryName constraints
// (nameconstraints.go), CRLs and online revocation, and caches: a verified chain by its exact
// bytes, and the verified path above an intermediate, under which a new leaf is verified with
// the intermediate as its only root (anchoredpath.go says why each check of RFC 5280 section
// 6.1 still happens). Verified chains and tokens are cached from their second verification on
// (package admission), so one-time credentials never displace returning ones. identity finds
// its candidate clients in an index of registered names (index.go).
//
// Configuration (schema.go: the file's keys and every default) is decoded strictly, validated
// section by section with errors that name the key path (compile.go, registry.go, route.go,
// tokens.go), and compiled once into a read-only *Config that an Engine swaps atomically; a
// large clients list is decoded a thousand registrations at a time (yaml.go). Its
// fetches and cache events are reported to a LoadOptions.Observer; the HTTP client of its
// fetches and the clock of key set refreshes can be injected:
//
//	cfg, err := policy.LoadConfig("certbind.yaml", policy.LoadOptions{})
//	if err != nil { ... }
//	engine := policy.NewEngine(policy.EngineConfig{Config: cfg})
//	d := engine.Decide(ctx, policy.Input{ModeHint: "identity", Certificate: presented})
//	if !d.Allow { log(d.Reason, d.Cause) }
package policy
