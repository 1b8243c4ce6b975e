// Package envoyxfcc emulates, byte for byte, what Envoy writes about a client certificate: the
// x-forwarded-client-cert (XFCC) element of its HTTP connection manager, the URL-encoded PEM of
// ext_authz's include_peer_certificate, and the RFC 2253 subject of its principals. It is
// test-only: the Envoy stand-in (testenv/envoysim), the benchmarks and the tests of certbind's
// parser use it to produce what a real Envoy would send. certbind itself never builds XFCC; its
// parser is extauthz/xfcc.
//
// Each function follows Envoy's source (main, late 2025):
//   - Build and Mutate: ConnectionManagerUtility::mutateXfccRequestHeader
//     (source/common/http/conn_manager_utility.cc) under forward_client_cert_details and
//     set_current_client_cert_details, including its unescaped By, URI and DNS (envoy#32945).
//   - EncodePEM: urlEncodedPemEncodedPeerCertificate and urlEncodedPemEncodedPeerCertificateChain
//     (source/common/tls/connection_info_impl_base.cc).
//   - SANs: Utility::getSubjectAltNames (source/common/tls/utility.cc), the SANs' raw bytes.
//   - FormatSubject: Utility::getSubjectFromCertificate, which calls BoringSSL's
//     X509_NAME_print_ex with XN_FLAG_RFC2253 (crypto/x509/name_print.cc, a_strex.cc).
//
// The tests check them against the headers of Envoy's integration tests
// (test/integration/xfcc_integration_test.cc, in extauthz/xfcc/testdata, read with
// ParseIntegrationCases) and FormatSubject against OpenSSL 3's rendering. Values are not
// checked beyond what Envoy checks: hostile certificates come out as Envoy would write them.
//
// # Example
//
//	element := envoyxfcc.Build(proxyCert, peerChain, envoyxfcc.Details{Cert: true, Chain: true})
//	header, present := envoyxfcc.Mutate(clientHeader, clientSent, true, envoyxfcc.SanitizeSet, element)
package envoyxfcc
