package policy

// Reason says why a request was allowed or denied. Every deny carries exactly one; the adapter
// maps each to a gRPC code, an HTTP status and an OAuth error through one table, and logs it.
type Reason string

// Reasons. The string values are stable: they appear in logs, metrics and Envoy's dynamic
// metadata.
const (
	ReasonOK Reason = "ok"

	// Routing.
	ReasonNoPolicy    Reason = "no_policy"    // no certbind_mode from Envoy and no configured route matches
	ReasonUnknownMode Reason = "unknown_mode" // certbind_mode names no mode

	// Where the certificate comes from.
	ReasonNoCertificate        Reason = "no_certificate"         // no client certificate (or a required source absent)
	ReasonCertificateMalformed Reason = "certificate_malformed"  // bytes that are not one X.509 certificate
	ReasonXFCCMalformed        Reason = "xfcc_malformed"         // x-forwarded-client-cert that the strict parser rejects
	ReasonXFCCElements         Reason = "xfcc_elements"          // wrong number of XFCC elements for the configured policy
	ReasonXFCCUntrusted        Reason = "xfcc_untrusted"         // XFCC written by a proxy not in xfcc.trusted_proxies
	ReasonCertificateMismatch  Reason = "certificate_mismatch"   // the peer certificate and XFCC name different certificates
	ReasonChainTooLong         Reason = "certificate_chain_long" // more intermediates than allowed

	// Certificate validation (tls_client_auth and identity).
	ReasonCertificateExpired     Reason = "certificate_expired"
	ReasonCertificateNotYetValid Reason = "certificate_not_yet_valid"
	ReasonCertificateUntrusted   Reason = "certificate_untrusted"   // no chain to a trust anchor
	ReasonCertificateUsage       Reason = "certificate_wrong_usage" // no clientAuth extended key usage
	ReasonCertificateIsCA        Reason = "certificate_is_ca"       // a CA certificate presented as a client
	ReasonCertificateInvalid     Reason = "certificate_invalid"     // chain fails for another reason (path length, name constraints, intermediate not a CA)
	ReasonCertificateRevoked     Reason = "certificate_revoked"
	ReasonCRLExpired             Reason = "crl_expired"        // the issuer's CRL is past nextUpdate and crl_expired is deny
	ReasonRevocationUnknown      Reason = "revocation_unknown" // OCSP/CRL gave no answer and the failure policy is hard

	// Client authentication (RFC 8705 section 2).
	ReasonRequestMalformed      Reason = "request_malformed"       // unreadable form body, truncated body
	ReasonClientIDMissing       Reason = "client_id_missing"       // no client_id in body, query or Basic user name
	ReasonClientIDConflict      Reason = "client_id_conflict"      // two different client_id values
	ReasonClientAuthMultiple    Reason = "client_auth_multiple"    // HTTP Basic credentials and a client_id parameter (RFC 6749 section 2.3)
	ReasonUnknownClient         Reason = "unknown_client"          // client_id not registered
	ReasonCertificateUnbound    Reason = "certificate_not_bound"   // certificate does not match the client's registration
	ReasonClientKeysUnavailable Reason = "client_keys_unavailable" // a self-signed client's jwks_uri has not loaded: fail closed

	// Identity (service to service).
	ReasonNoMatchingClient Reason = "no_matching_client" // the certificate belongs to no registered client
	ReasonAmbiguousClient  Reason = "ambiguous_client"   // the certificate matches more than one client

	// Authorization: the authenticated client is not among the route's clients.
	ReasonClientNotAllowed Reason = "client_not_allowed"

	// Certificate-bound access tokens (RFC 8705 section 3, RFC 6750).
	ReasonTokenMissing         Reason = "token_missing"             // no Bearer token (RFC 6750 section 3.1: no error code)
	ReasonTokenRequestInvalid  Reason = "token_request_invalid"     // several or malformed Authorization values
	ReasonTokenMalformed       Reason = "token_malformed"           // not a well-formed token, or ill-typed claims
	ReasonTokenAlgorithm       Reason = "token_algorithm"           // alg not allowed (none, HMAC, or not in the issuer's list)
	ReasonTokenType            Reason = "token_type"                // typ not accepted (RFC 9068 at+jwt)
	ReasonTokenIssuer          Reason = "token_issuer"              // issuer not configured
	ReasonTokenUnknownKey      Reason = "token_unknown_key"         // no issuer key with the token's kid
	ReasonTokenSignature       Reason = "token_signature"           // signature does not verify
	ReasonTokenExpired         Reason = "token_expired"             // past exp, or no exp
	ReasonTokenNotYetValid     Reason = "token_not_yet_valid"       // before nbf
	ReasonTokenAudience        Reason = "token_audience"            // not for this resource server
	ReasonTokenInactive        Reason = "token_inactive"            // introspection: active false
	ReasonTokenUnverifiable    Reason = "token_unverifiable"        // keys or introspection unavailable: fail closed
	ReasonTokenUnbound         Reason = "token_unbound"             // no cnf x5t#S256 where binding is required
	ReasonTokenCNFMalformed    Reason = "token_cnf_malformed"       // cnf or x5t#S256 not canonical (RFC 8705 section 3.1)
	ReasonTokenCNFUnsupported  Reason = "token_cnf_unsupported"     // bound by another method (x5t, jkt) that certbind cannot check
	ReasonTokenCertMissing     Reason = "token_certificate_missing" // a bound token without a client certificate
	ReasonTokenBindingMismatch Reason = "token_binding_mismatch"    // x5t#S256 of another certificate
	ReasonTokenClientMismatch  Reason = "token_client_mismatch"     // token client_id is not the certificate's client
	ReasonInsufficientScope    Reason = "insufficient_scope"        // RFC 6750 section 3.1
)

// Reasons lists every reason, for exhaustive tables and tests.
func Reasons() []Reason {
	return []Reason{
		ReasonOK, ReasonNoPolicy, ReasonUnknownMode,
		ReasonNoCertificate, ReasonCertificateMalformed, ReasonXFCCMalformed, ReasonXFCCElements, ReasonXFCCUntrusted,
		ReasonCertificateMismatch, ReasonChainTooLong,
		ReasonCertificateExpired, ReasonCertificateNotYetValid, ReasonCertificateUntrusted,
		ReasonCertificateUsage, ReasonCertificateIsCA, ReasonCertificateInvalid,
		ReasonCertificateRevoked, ReasonCRLExpired, ReasonRevocationUnknown,
		ReasonRequestMalformed, ReasonClientIDMissing, ReasonClientIDConflict, ReasonClientAuthMultiple, ReasonUnknownClient,
		ReasonCertificateUnbound, ReasonClientKeysUnavailable,
		ReasonNoMatchingClient, ReasonAmbiguousClient, ReasonClientNotAllowed,
		ReasonTokenMissing, ReasonTokenRequestInvalid, ReasonTokenMalformed, ReasonTokenAlgorithm,
		ReasonTokenType, ReasonTokenIssuer, ReasonTokenUnknownKey, ReasonTokenSignature,
		ReasonTokenExpired, ReasonTokenNotYetValid, ReasonTokenAudience, ReasonTokenInactive,
		ReasonTokenUnverifiable, ReasonTokenUnbound, ReasonTokenCNFMalformed, ReasonTokenCNFUnsupported,
		ReasonTokenCertMissing, ReasonTokenBindingMismatch, ReasonTokenClientMismatch,
		ReasonInsufficientScope,
	}
}

// Description is the client-facing explanation of a reason: safe to show to anyone, it never
// includes internal causes.
func (r Reason) Description() string {
	switch r {
	case ReasonOK:
		return "allowed"
	case ReasonNoPolicy:
		return "no authorization policy applies to this route"
	case ReasonUnknownMode:
		return "the route selects an unknown certbind mode"
	case ReasonNoCertificate:
		return "a client certificate is required"
	case ReasonCertificateMalformed:
		return "the client certificate could not be parsed"
	case ReasonXFCCMalformed:
		return "the forwarded client certificate header is malformed"
	case ReasonXFCCUntrusted:
		return "the forwarded client certificate header comes from an untrusted proxy"
	case ReasonXFCCElements:
		return "the forwarded client certificate header has an unexpected number of elements"
	case ReasonCertificateMismatch:
		return "the forwarded client certificate differs from the TLS peer certificate"
	case ReasonChainTooLong:
		return "the client certificate chain is too long"
	case ReasonCertificateExpired:
		return "the client certificate has expired"
	case ReasonCertificateNotYetValid:
		return "the client certificate is not yet valid"
	case ReasonCertificateUntrusted:
		return "the client certificate is not issued by a trusted certificate authority"
	case ReasonCertificateUsage:
		return "the client certificate is not valid for TLS client authentication"
	case ReasonCertificateIsCA:
		return "a certificate authority certificate cannot authenticate a client"
	case ReasonCertificateInvalid:
		return "the client certificate chain is invalid"
	case ReasonCertificateRevoked:
		return "the client certificate has been revoked"
	case ReasonRevocationUnknown:
		return "revocation status of the client certificate is unavailable"
	case ReasonCRLExpired:
		return "revocation status of the client certificate is unavailable"
	case ReasonClientKeysUnavailable:
		return "the registered client certificates are unavailable"
	case ReasonRequestMalformed:
		return "the request could not be read"
	case ReasonClientIDMissing:
		return "client_id is required"
	case ReasonClientIDConflict:
		return "the request carries conflicting client_id values"
	case ReasonClientAuthMultiple:
		return "the request uses more than one client authentication method"
	case ReasonClientNotAllowed:
		return "this client is not allowed on this resource"
	case ReasonUnknownClient:
		return "unknown client"
	case ReasonCertificateUnbound:
		return "the client certificate is not registered for this client"
	case ReasonNoMatchingClient:
		return "the client certificate does not belong to a registered client"
	case ReasonAmbiguousClient:
		return "the client certificate matches more than one registered client"
	case ReasonTokenMissing:
		return "an access token is required"
	case ReasonTokenRequestInvalid:
		return "the Authorization header is malformed or repeated"
	case ReasonTokenMalformed:
		return "the access token is malformed"
	case ReasonTokenAlgorithm:
		return "the access token is signed with an algorithm that is not accepted"
	case ReasonTokenType:
		return "the access token has the wrong type"
	case ReasonTokenIssuer:
		return "the access token is from an untrusted issuer"
	case ReasonTokenUnknownKey:
		return "the access token is signed with an unknown key"
	case ReasonTokenSignature:
		return "the access token signature is invalid"
	case ReasonTokenExpired:
		return "the access token has expired"
	case ReasonTokenNotYetValid:
		return "the access token is not yet valid"
	case ReasonTokenAudience:
		return "the access token is not intended for this resource"
	case ReasonTokenInactive:
		return "the access token is not active"
	case ReasonTokenUnverifiable:
		return "the access token cannot be verified right now"
	case ReasonTokenUnbound:
		return "the access token is not bound to a client certificate"
	case ReasonTokenCNFMalformed:
		return "the access token's certificate confirmation is malformed"
	case ReasonTokenCNFUnsupported:
		return "the access token is bound by an unsupported confirmation method"
	case ReasonTokenCertMissing:
		return "the access token is certificate-bound but no client certificate was presented"
	case ReasonTokenBindingMismatch:
		return "the access token is bound to a different client certificate"
	case ReasonTokenClientMismatch:
		return "the access token was issued to a different client than the certificate's"
	case ReasonInsufficientScope:
		return "the access token lacks the scope this resource requires"
	}
	return string(r)
}
