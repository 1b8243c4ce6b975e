// Package xfcc parses Envoy's x-forwarded-client-cert (XFCC) header, as the HTTP connection
// manager writes it (docs: configuration/http/http_conn_man/headers,
// "x-forwarded-client-cert"; source: source/common/http/conn_manager_utility.cc,
// mutateXfccRequestHeader).
//
// # Format
//
// A header is a list of elements separated by ',', one per proxy hop, oldest first; an
// element is a list of key=value pairs separated by ';'. Keys are case-insensitive: By (the
// proxy's own URI SANs), Hash (hex SHA-256 of the client's leaf certificate), Cert and Chain
// (URL-encoded PEM of the leaf and of the chain the client sent), Subject, URI, DNS. Parse
// splits the way Envoy's own parser does (source/extensions/formatter/xfcc_value): separators
// count only outside double quotes; a '"' toggles quoting unless preceded by an odd number of
// backslashes; whitespace around keys and values is trimmed; a quoted value loses its quotes
// and inside it only \" and \\ are unescaped (Envoy's parser also unescapes unquoted values;
// Parse keeps them as they are, because Envoy writes By, URI and DNS raw). Parse is stricter
// than Envoy's parser in what it accepts: it rejects unknown keys, repeated Hash, Cert, Chain
// or Subject, pairs without '=', quotes that do not enclose a whole value, and Cert or Chain
// values that are not exactly PEM CERTIFICATE blocks; it checks that Hash matches the leaf
// and that Cert is Chain[0]. It is linear in the header length and enforces Limits before
// doing work proportional to the input.
//
// Its tests read the headers of Envoy's own tests (testdata) and what testenv/envoyxfcc, the
// test-only emulation of Envoy's XFCC builder, writes for hostile certificates.
//
// # Trust
//
// XFCC is exactly as trustworthy as the proxy that wrote it, that is, as its
// forward_client_cert_details. Only SANITIZE_SET (one element, written by the proxy; select it
// with PolicySingle) and APPEND_FORWARD (the proxy's element is the last; PolicyLast) produce
// an element the proxy vouches for; every other element may come from the client.
// ALWAYS_FORWARD_ONLY passes a client-written header even on plaintext connections: never
// accept it. When ext_authz sends attributes.source.certificate, prefer that field and require
// it to match the element's Hash.
//
// Identity is never taken from Subject, URI or DNS: they are renderings for logs. Envoy does
// not escape By, URI or DNS values (a TODO in mutateXfccRequestHeader; envoy#32945), and they
// come after Hash, Cert, Chain and Subject, so a client certificate whose URI SAN is
// `x;Cert="..."` makes Envoy write a second Cert pair after the genuine one. Parse rejects that
// element with ErrDuplicateKey; without a genuine Cert the injected one must still match the
// genuine Hash (ErrHashMismatch), so an injected certificate is never returned. These are the
// intended outcomes: such a request is denied. An injected URI or DNS, or a Subject when the
// proxy sends none, cannot be told from a genuine one: one more reason never to use them.
//
// A SAN containing ',' starts a fake element after Envoy's. PolicySingle then fails with
// ErrTooManyElements, but under PolicyLast the fake element is the last one and is internally
// consistent (any Hash with its Cert). With PolicyLast, either leave uri and dns out of
// set_current_client_cert_details or require the element's leaf to equal
// attributes.source.certificate. The caller parses the returned DER and takes identity from
// the certificate itself.
//
// # Example
//
//	elems, err := xfcc.Parse(header, xfcc.Limits{})
//	if err != nil {
//		return deny(err) // malformed or hostile header
//	}
//	el, err := xfcc.Select(elems, xfcc.PolicySingle)
//	if err != nil {
//		return deny(err)
//	}
//	der, err := el.Leaf() // Hash already checked against it
//	if err != nil {
//		return deny(err) // set_current_client_cert_details has neither cert nor chain
//	}
//	cert, err := x509.ParseCertificate(der)
package xfcc
