package policy

import (
	"errors"
	"fmt"
)

// Reason says why a request was allowed or denied. Every deny carries exactly one; its class
// (the reasons table below) is what the adapter maps to a gRPC code, an HTTP status and an
// OAuth error, and the reason itself is what it logs.
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
	ReasonTokenRejected        Reason = "token_rejected"            // introspection: an error answer about the token (RFC 7662, RFC 6749 section 5.2)
	ReasonTokenUnverifiable    Reason = "token_unverifiable"        // keys or introspection unavailable: fail closed
	ReasonTokenUnbound         Reason = "token_unbound"             // no cnf binding where binding is required
	ReasonTokenBindingMethod   Reason = "token_binding_method"      // bound, but not by a method the route or issuer accepts
	ReasonTokenCNFMalformed    Reason = "token_cnf_malformed"       // cnf, x5t#S256 or jkt not canonical (RFC 8705 section 3.1, RFC 9449 section 6.1)
	ReasonTokenCNFUnsupported  Reason = "token_cnf_unsupported"     // bound by another method (x5t, jwk) that certbind cannot check
	ReasonTokenCertMissing     Reason = "token_certificate_missing" // a bound token without a client certificate
	ReasonTokenBindingMismatch Reason = "token_binding_mismatch"    // x5t#S256 of another certificate
	ReasonTokenClientMismatch  Reason = "token_client_mismatch"     // token client_id is not the certificate's client
	ReasonInsufficientScope    Reason = "insufficient_scope"        // RFC 6750 section 3.1

	// DPoP-bound access tokens (RFC 9449): how the token is presented, and its proof.
	ReasonTokenDPoPAsBearer  Reason = "token_dpop_as_bearer"    // a DPoP-bound token with the Bearer scheme (section 7.2)
	ReasonTokenNotDPoPBound  Reason = "token_not_dpop_bound"    // the DPoP scheme with a token that has no cnf.jkt (section 7.1)
	ReasonDPoPProofMissing   Reason = "dpop_proof_missing"      // no DPoP header, or more than one (section 4.3 step 1)
	ReasonDPoPProofMalformed Reason = "dpop_proof_malformed"    // not a JWS, or a claim missing or ill-typed (steps 2, 3)
	ReasonDPoPProofType      Reason = "dpop_proof_type"         // typ is not dpop+jwt (step 4)
	ReasonDPoPAlgorithm      Reason = "dpop_proof_algorithm"    // alg not allowed (step 5)
	ReasonDPoPKey            Reason = "dpop_proof_key"          // jwk missing, private or not a signing key (steps 6, 7)
	ReasonDPoPSignature      Reason = "dpop_proof_signature"    // the signature does not verify with the jwk (step 6)
	ReasonDPoPMethod         Reason = "dpop_proof_method"       // htm is not the request's method (step 8)
	ReasonDPoPURI            Reason = "dpop_proof_uri"          // htu is not the request's URI (step 9)
	ReasonDPoPNonce          Reason = "dpop_nonce"              // no current server nonce (step 10, section 9: use_dpop_nonce)
	ReasonDPoPTime           Reason = "dpop_proof_time"         // iat outside the accepted window (step 11)
	ReasonDPoPTokenHash      Reason = "dpop_proof_token_hash"   // ath missing or not the token's hash (step 12)
	ReasonDPoPKeyMismatch    Reason = "dpop_key_mismatch"       // the proof's key is not the token's cnf.jkt (step 12)
	ReasonDPoPReplay         Reason = "dpop_proof_replayed"     // the proof's jti was seen before (section 11.1)
	ReasonDPoPReplayDown     Reason = "dpop_replay_unavailable" // the replay store cannot answer: fail closed
)

// Class groups reasons by what went wrong, independent of transport: the adapter derives the
// HTTP status, the gRPC code and the OAuth error from the class and the mode.
type Class int

// Classes.
const (
	ClassOK                Class = iota
	ClassForbidden               // no policy lets the request through, whoever sends it
	ClassBadRequest              // the request itself is malformed
	ClassUnauthenticated         // the client, its certificate or its token failed authentication
	ClassUnidentified            // the certificate is valid but names no one registered client
	ClassTokenMissing            // no access token at all (RFC 6750 section 3.1: no error code)
	ClassInsufficientScope       // a valid token without the scope the route requires
	ClassUnavailable             // certbind cannot decide now (keys or introspection down): fail closed
	ClassProofInvalid            // the DPoP proof is missing or fails a check (RFC 9449 invalid_dpop_proof)
	ClassNonceRequired           // the DPoP proof needs a current server nonce (RFC 9449 use_dpop_nonce)
)

type reasonInfo struct {
	reason      Reason
	class       Class
	description string // client-facing: never an internal cause
}

// reasonTable is the one table of reasons, in declaration order: each reason's class and
// client-facing description. A test fails if a constant is missing.
var reasonTable = []reasonInfo{
	{ReasonOK, ClassOK, "allowed"},
	{ReasonNoPolicy, ClassForbidden, "no authorization policy applies to this route"},
	{ReasonUnknownMode, ClassForbidden, "the route selects an unknown certbind mode"},
	{ReasonNoCertificate, ClassUnauthenticated, "a client certificate is required"},
	{ReasonCertificateMalformed, ClassUnauthenticated, "the client certificate could not be parsed"},
	{ReasonXFCCMalformed, ClassUnauthenticated, "the forwarded client certificate header is malformed"},
	{ReasonXFCCElements, ClassUnauthenticated, "the forwarded client certificate header has an unexpected number of elements"},
	{ReasonXFCCUntrusted, ClassUnauthenticated, "the forwarded client certificate header comes from an untrusted proxy"},
	{ReasonCertificateMismatch, ClassUnauthenticated, "the forwarded client certificate differs from the TLS peer certificate"},
	{ReasonChainTooLong, ClassUnauthenticated, "the client certificate chain is too long"},
	{ReasonCertificateExpired, ClassUnauthenticated, "the client certificate has expired"},
	{ReasonCertificateNotYetValid, ClassUnauthenticated, "the client certificate is not yet valid"},
	{ReasonCertificateUntrusted, ClassUnauthenticated, "the client certificate is not issued by a trusted certificate authority"},
	{ReasonCertificateUsage, ClassUnauthenticated, "the client certificate is not valid for TLS client authentication"},
	{ReasonCertificateIsCA, ClassUnauthenticated, "a certificate authority certificate cannot authenticate a client"},
	{ReasonCertificateInvalid, ClassUnauthenticated, "the client certificate chain is invalid"},
	{ReasonCertificateRevoked, ClassUnauthenticated, "the client certificate has been revoked"},
	{ReasonCRLExpired, ClassUnauthenticated, "revocation status of the client certificate is unavailable"},
	{ReasonRevocationUnknown, ClassUnauthenticated, "revocation status of the client certificate is unavailable"},
	{ReasonRequestMalformed, ClassBadRequest, "the request could not be read"},
	{ReasonClientIDMissing, ClassBadRequest, "client_id is required"},
	{ReasonClientIDConflict, ClassBadRequest, "the request carries conflicting client_id values"},
	{ReasonClientAuthMultiple, ClassBadRequest, "the request uses more than one client authentication method"},
	{ReasonUnknownClient, ClassUnauthenticated, "unknown client"},
	{ReasonCertificateUnbound, ClassUnauthenticated, "the client certificate is not registered for this client"},
	{ReasonClientKeysUnavailable, ClassUnauthenticated, "the registered client certificates are unavailable"},
	{ReasonNoMatchingClient, ClassUnidentified, "the client certificate does not belong to a registered client"},
	{ReasonAmbiguousClient, ClassUnidentified, "the client certificate matches more than one registered client"},
	{ReasonClientNotAllowed, ClassForbidden, "this client is not allowed on this resource"},
	{ReasonTokenMissing, ClassTokenMissing, "an access token is required"},
	{ReasonTokenRequestInvalid, ClassBadRequest, "the Authorization header is malformed or repeated"},
	{ReasonTokenMalformed, ClassUnauthenticated, "the access token is malformed"},
	{ReasonTokenAlgorithm, ClassUnauthenticated, "the access token is signed with an algorithm that is not accepted"},
	{ReasonTokenType, ClassUnauthenticated, "the access token has the wrong type"},
	{ReasonTokenIssuer, ClassUnauthenticated, "the access token is from an untrusted issuer"},
	{ReasonTokenUnknownKey, ClassUnauthenticated, "the access token is signed with an unknown key"},
	{ReasonTokenSignature, ClassUnauthenticated, "the access token signature is invalid"},
	{ReasonTokenExpired, ClassUnauthenticated, "the access token has expired"},
	{ReasonTokenNotYetValid, ClassUnauthenticated, "the access token is not yet valid"},
	{ReasonTokenAudience, ClassUnauthenticated, "the access token is not intended for this resource"},
	{ReasonTokenInactive, ClassUnauthenticated, "the access token is not active"},
	{ReasonTokenRejected, ClassUnauthenticated, "the authorization server refused the access token"},
	{ReasonTokenUnverifiable, ClassUnavailable, "the access token cannot be verified right now"},
	{ReasonTokenUnbound, ClassUnauthenticated, "the access token is not sender-constrained"},
	{ReasonTokenBindingMethod, ClassUnauthenticated, "the access token is not bound by a method this resource accepts"},
	{ReasonTokenCNFMalformed, ClassUnauthenticated, "the access token's certificate confirmation is malformed"},
	{ReasonTokenCNFUnsupported, ClassUnauthenticated, "the access token is bound by an unsupported confirmation method"},
	{ReasonTokenCertMissing, ClassUnauthenticated, "the access token is certificate-bound but no client certificate was presented"},
	{ReasonTokenBindingMismatch, ClassUnauthenticated, "the access token is bound to a different client certificate"},
	{ReasonTokenClientMismatch, ClassUnauthenticated, "the access token was issued to a different client than the certificate's"},
	{ReasonInsufficientScope, ClassInsufficientScope, "the access token lacks the scope this resource requires"},
	{ReasonTokenDPoPAsBearer, ClassUnauthenticated, "the access token is DPoP-bound and must be sent with the DPoP scheme"},
	{ReasonTokenNotDPoPBound, ClassUnauthenticated, "the access token sent with the DPoP scheme is not DPoP-bound"},
	{ReasonDPoPProofMissing, ClassProofInvalid, "exactly one DPoP proof is required"},
	{ReasonDPoPProofMalformed, ClassProofInvalid, "the DPoP proof is malformed"},
	{ReasonDPoPProofType, ClassProofInvalid, "the DPoP proof has the wrong type"},
	{ReasonDPoPAlgorithm, ClassProofInvalid, "the DPoP proof is signed with an algorithm that is not accepted"},
	{ReasonDPoPKey, ClassProofInvalid, "the DPoP proof's key is not an acceptable public key"},
	{ReasonDPoPSignature, ClassProofInvalid, "the DPoP proof signature is invalid"},
	{ReasonDPoPMethod, ClassProofInvalid, "the DPoP proof is for another HTTP method"},
	{ReasonDPoPURI, ClassProofInvalid, "the DPoP proof is for another URI"},
	{ReasonDPoPNonce, ClassNonceRequired, "the DPoP proof must carry the server's current nonce"},
	{ReasonDPoPTime, ClassProofInvalid, "the DPoP proof is too old or from the future"},
	{ReasonDPoPTokenHash, ClassProofInvalid, "the DPoP proof is not for this access token"},
	{ReasonDPoPKeyMismatch, ClassProofInvalid, "the DPoP proof is signed by a key the access token is not bound to"},
	{ReasonDPoPReplay, ClassProofInvalid, "the DPoP proof has been used before"},
	{ReasonDPoPReplayDown, ClassUnavailable, "the DPoP proof cannot be checked right now"},
}

// reasonIndex finds a reason's row in reasonTable.
var reasonIndex = func() map[Reason]int {
	m := make(map[Reason]int, len(reasonTable))
	for i, ri := range reasonTable {
		m[ri.reason] = i
	}
	return m
}()

// Reasons lists every reason, for exhaustive tables and tests.
func Reasons() []Reason {
	out := make([]Reason, len(reasonTable))
	for i, ri := range reasonTable {
		out[i] = ri.reason
	}
	return out
}

// Class is the reason's class; an unknown reason is ClassForbidden (fail closed).
func (r Reason) Class() Class {
	if i, ok := reasonIndex[r]; ok {
		return reasonTable[i].class
	}
	return ClassForbidden
}

// Description is the client-facing explanation of a reason: safe to show to anyone, it never
// includes internal causes.
func (r Reason) Description() string {
	if i, ok := reasonIndex[r]; ok {
		return reasonTable[i].description
	}
	return string(r)
}

// Error is a deny: its reason and the internal cause, as crypto/x509's CertificateInvalidError
// carries a Reason and a Detail. Helpers return it as a plain error; reasonOf, the one place
// that unwraps it, turns it into a decision.
type Error struct {
	Reason Reason
	Err    error // the internal cause, for logs only; may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Deny is an *Error for reason r with its cause (nil for none).
func Deny(r Reason, cause error) error { return &Error{Reason: r, Err: cause} }

// reasonOf is the deny an error carries, nil for nil. An error without a reason is a bug; it
// still denies (no_policy, class forbidden) rather than allow.
func reasonOf(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Reason: ReasonNoPolicy, Err: fmt.Errorf("internal: an error without a reason: %w", err)}
}
