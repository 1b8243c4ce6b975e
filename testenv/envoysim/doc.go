// Package envoysim is an Envoy stand-in for tests and the demo: an HTTPS front proxy that
// behaves like Envoy running envoy/envoy.yaml (listener TLS, HTTP connection manager, ext_authz
// gRPC filter, router) where no Envoy binary is available. It is driven by envoy.Summarize of
// the shipped file, plus PathsOf for the path handling the Summary does not carry, so the
// simulation and the config cannot drift. It proves that certbind works with what Envoy
// really sends, not that Envoy is configured well: that is envoy.Lint's job.
//
// # Faithful
//
// Each behaviour follows Envoy's source (main, late 2025); comments name the function.
//   - Listener (DownstreamTlsContext): TLS 1.2 or later, ALPN h2 and http/1.1, a client
//     certificate required and verified against trusted_ca with the intermediates the client
//     sent, for clientAuth; ACCEPT_UNTRUSTED accepts any certificate but still requires one.
//     The trusted_ca names are advertised in the CertificateRequest.
//   - Connection manager, before any filter: a non-relative :path is 404; a fragment is 400;
//     path_with_escaped_slashes_action (%2F/%5C: redirect 307 to the unescaped path, reject
//     400, or forward), normalize_path (the rules of Chromium's url::CanonicalizePath, as
//     PathUtil::canonicalPath applies them before '?': dot segments, also %2e, '\' as '/',
//     unreserved escapes decoded, NUL fails with 400) and merge_slashes; an upgrade request is
//     403 (no upgrade_configs). Connection-specific headers are removed, TE kept only as
//     "trailers", an invalid Referer dropped (isValidRefererValue), Expect: 100-continue
//     answered and removed. use_remote_address at the edge: the peer is appended
//     to x-forwarded-for, x-forwarded-proto is overwritten, :scheme set from it, the x-envoy-*
//     headers of cleanInternalHeaders are removed (other client-sent x-envoy-* headers pass,
//     as in Envoy), x-envoy-external-address set, x-request-id replaced by a fresh UUID.
//     XFCC: envoyxfcc.Build with the listener's leaf and the chain as the client sent it, combined
//     with the client's header by envoyxfcc.Mutate per forward_client_cert_details.
//   - Routing: the first route whose exact path (query ignored) or prefix matches,
//     case-sensitively, on the rewritten path. No match: 404 and no check (ext_authz skips a
//     request without a route). direct_response answers with its status after the check.
//   - ext_authz: per-route disabled skips it (and body buffering). with_request_body buffers a
//     request that has a body: over max_request_bytes it is 413 "Payload Too Large" without a
//     check, or with allow_partial_message the body is cut to max_request_bytes. The
//     CheckRequest is createHttpCheck's: source and destination socket
//     addresses; principals (first URI SAN, else first DNS SAN, else the RFC 2253 subject);
//     source.certificate (URL-encoded PEM of the leaf) with include_peer_certificate;
//     request.time; http.id (the stream id, decimal); method, path (with query, not decoded),
//     host, scheme, protocol ("HTTP/1.1", "HTTP/2"), size; headers with lower-case names,
//     pseudo-headers :authority :path :method :scheme, repeated headers joined with ',', a
//     client-sent x-envoy-auth-partial-body skipped; body and x-envoy-auth-partial-body only
//     when buffered; invalid UTF-8 replaced by '!'; context_extensions of the route; empty
//     metadata contexts. Summary.AuthzTimeout bounds the call.
//   - The answer (GrpcClientImpl::onSuccess, Filter::onComplete): a failed or
//     timed-out RPC is Summary.StatusOnError with no body; a non-OK status with error_response
//     is its status (else status_on_error), headers and body; any other non-OK status is a
//     denial: denied_response status (403 when unset), headers (each named header replaced,
//     then every entry added) and body, never the upstream. OK applies ok_response.headers in
//     order: OVERWRITE_IF_EXISTS_OR_ADD and append=false replace, APPEND_IF_EXISTS_OR_ADD adds
//     another entry, legacy append=true joins to the existing value with ',', ADD_IF_ABSENT,
//     OVERWRITE_IF_EXISTS; then headers_to_remove (pseudo-headers and host cannot be removed);
//     then query_parameters_to_set/remove (QueryParamsMulti: parameters re-sorted by name);
//     response_headers_to_add go on the upstream response. A request grown past 100 headers or
//     60 KiB is rejected with 500 (rejectResponse).
//   - Router: HTTP/1.1 to the route's cluster, Host = :authority, the path as rewritten,
//     x-envoy-expected-rq-timeout-ms 15000 and the default 15 s route timeout (504 "upstream
//     request timeout"); a connection failure is 503. Responses get
//     x-envoy-upstream-service-time and server: envoy. Local replies carry server: envoy, and
//     content-type text/plain and content-length only when they have a body.
//
// # Simplified
//
//   - Only what Summary and PathOptions express is simulated: one listener, one virtual host
//     (domains are not matched), prefix and exact path routes. Not modelled: allowed_headers /
//     disallowed_headers (every header is sent), pack_as_bytes, encode_raw_headers,
//     include_tls_session, metadata namespaces, failure_mode_allow (Summary has no field: it
//     is false, as envoy.Lint requires), max_denied_response_body_bytes,
//     decoder_header_mutation_rules, clear_route_cache, direct_response bodies, route
//     timeouts, retries, per-route grpc_service, access logs and dynamic metadata.
//   - No address is internal (an empty internal_address_config, the default of current
//     Envoy; older releases trusted RFC 1918 and loopback): every request is an edge request.
//     For a loopback peer Envoy appends its node address to x-forwarded-for; the stand-in
//     appends the listener's address.
//   - Body buffering counts bytes, not frames: with allow_partial_message,
//     x-envoy-auth-partial-body is "true" exactly when the body is longer than
//     max_request_bytes (Envoy says "false" if a frame ends exactly at the limit). size is the
//     number of body bytes buffered, 0 without buffering.
//   - Header mutations with an invalid name or value (CR, LF, NUL) are rejected with 500, as
//     validate_mutations would; Envoy without it does not check. A denied or error status
//     outside 200-599 is answered 500. Legacy append=true on an absent header adds it.
//   - Non-ASCII bytes in a path are handled as current Chromium does (valid UTF-8 escaped,
//     invalid UTF-8 fails); the ASCII rules are the table of Envoy's Chromium snapshot.
//   - Headers live in an http.Header: names are canonicalized and the order of different
//     headers is not Envoy's (the CheckRequest map is unaffected). net/http rejects some
//     malformed requests with its own 400 before the stand-in sees them. HTTP/3 is not served;
//     gRPC requests get plain local replies, not trailers-only responses.
//   - Upstreams: net/http's transport (connect timeout 1 s, no compression); no load
//     balancing, health checks, circuit breakers or outlier detection; error texts follow
//     Envoy's but their reset details do not. A path starting with "//" (only without
//     merge_slashes) is sent in absolute form.
//   - The ext_authz cluster is whatever AuthorizationClient the caller passes (the demo: a
//     gRPC connection to certbind); Envoy's own gRPC client, its TLS to certbind and its
//     retries are not simulated.
//
// Served directly through ServeHTTP without TLS, the Proxy behaves like a plaintext listener:
// no peer, and XFCC handled per forward_client_cert_details for a non-mTLS connection.
//
// # Use
//
// The demo and the end-to-end tests run it in front of certbind and the demo upstreams:
//
//	b, err := envoy.LoadFile("envoy/envoy.yaml")
//	if err != nil {
//		return err
//	}
//	s, err := envoy.Summarize(b)
//	if err != nil {
//		return err
//	}
//	paths, err := envoysim.PathsOf(b)
//	if err != nil {
//		return err
//	}
//	conn, err := grpc.NewClient(certbindAddr, grpc.WithTransportCredentials(creds))
//	if err != nil {
//		return err
//	}
//	p, err := envoysim.New(envoysim.Config{
//		Summary:    s,
//		Paths:      &paths,
//		ServerCert: envoyCert,  // tls.Certificate: the listener's chain and key
//		ClientCAs:  clientRoots, // trusted_ca
//		Authz:      authv3.NewAuthorizationClient(conn),
//		Upstreams:  map[string]string{"as": asURL, "api": apiURL},
//		Logger:     log,
//	})
//	if err != nil {
//		return err
//	}
//	l, err := net.Listen("tcp", "127.0.0.1:8443")
//	if err != nil {
//		return err
//	}
//	go p.Serve(l) // until p.Close()
package envoysim
